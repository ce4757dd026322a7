// captcha-ocr bench: times the inference engine alone on random input, after a warm-up, so that
// anyone can compare machines (as whisper.cpp's bench does).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "captcha/errors.h"
#include "captcha/inference.h"
#include "common.h"

namespace captcha::cli {

namespace {

struct BenchArgs {
  std::string model;
  int batch = 1;
  int threads = 0;
  int runs = 0;  // 0: as many as fit in about two seconds (at least 10)
  int warmup = 5;
  bool json = false;
  bool int8 = false;
  std::string input_out, logits_out;  // the random input and its logits, raw float32, for checks
};

void write_floats(const std::string& path, const std::vector<float>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(float)));
  if (!out) throw Error(path + ": cannot write");
}

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// The kernels' builds: "avx512", or "avx512, int8 on avx512-vnni".
std::string kernels(bool int8) { return inference_kernels() + (int8 ? ", int8 on " + int8_kernels() : ""); }

int bench(const BenchArgs& args) {
  const auto load_start = std::chrono::steady_clock::now();
  const ModelFile model = load_model(args.model);
  set_inference_threads(args.threads);
  const InferenceNetwork network(model, args.model, args.int8 ? Precision::kInt8 : Precision::kFloat32);
  const double load_ms = milliseconds_since(load_start);

  const int width = model.preprocess.width, height = model.preprocess.height;
  // Normalised pixels are zero-mean, unit-variance scale: random values of that spread.
  std::vector<float> input(static_cast<std::size_t>(args.batch) * width * height);
  std::mt19937 random(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : input) v = normal(random);

  const auto first_start = std::chrono::steady_clock::now();
  const auto logits = network.forward(input.data(), args.batch, width);
  const double first_ms = milliseconds_since(first_start);
  if (!args.input_out.empty()) write_floats(args.input_out, input);
  if (!args.logits_out.empty()) write_floats(args.logits_out, logits);
  for (int i = 0; i < args.warmup; ++i) network.forward(input.data(), args.batch, width);

  std::vector<double> times;
  const auto bench_start = std::chrono::steady_clock::now();
  while (args.runs > 0 ? static_cast<int>(times.size()) < args.runs
                       : (times.size() < 10 || milliseconds_since(bench_start) < 2000.0)) {
    const auto start = std::chrono::steady_clock::now();
    network.forward(input.data(), args.batch, width);
    times.push_back(milliseconds_since(start));
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  const double images_per_second = args.batch * 1000.0 / median;
  if (args.json) {
    nlohmann::json out = {{"model", args.model},       {"batch", args.batch},
                          {"threads", args.threads},   {"width", width},
                          {"height", height},          {"runs", times.size()},
                          {"median_ms", median},       {"min_ms", times.front()},
                          {"images_per_second", images_per_second},
                          {"load_ms", load_ms},        {"first_forward_ms", first_ms},
                          {"kernels", kernels(args.int8 || model.int8)}};
    std::cout << out.dump() << "\n";
  } else {
    std::printf("model %s, batch %d, %dx%d, threads %s, %zu runs after %d warm-up, %s kernels\n", args.model.c_str(),
                args.batch, width, height, args.threads > 0 ? std::to_string(args.threads).c_str() : "all",
                times.size(), args.warmup, kernels(args.int8 || model.int8).c_str());
    std::printf("median %.3f ms per batch (min %.3f), %.1f images/s; load %.1f ms, first forward %.1f ms\n",
                median, times.front(), images_per_second, load_ms, first_ms);
  }
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("bench", "Time the inference engine on random input (median ms per batch, images/s)");
  auto args = std::make_shared<BenchArgs>();
  cmd->add_option("--model", args->model, "Model file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--batch", args->batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--threads", args->threads, "Threads (default: every core)");
  cmd->add_option("--runs", args->runs, "Timed runs (default: as many as fit in about 2 s, at least 10)")
      ->check(kPositive);
  cmd->add_option("--warmup", args->warmup, "Untimed runs first")->capture_default_str()->check(kNotNegative);
  cmd->add_flag("--int8", args->int8, kInt8Help);
  cmd->add_flag("--json", args->json, "One JSON object (keys median_ms, images_per_second, ...)");
  cmd->add_option("--input-out", args->input_out, "Write the random input (raw float32, N x 1 x H x W)");
  cmd->add_option("--logits-out", args->logits_out, "Write its logits (raw float32, N x T x classes)");
  cmd->callback([&run, args] { run = [args] { return bench(*args); }; });
}

}  // namespace captcha::cli
