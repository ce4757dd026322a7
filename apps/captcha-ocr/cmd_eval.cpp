// captcha-ocr eval: measures a model on a labelled folder (exact match, CER, confusions).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/metrics.h"
#include "captcha/plots.h"
#include "captcha/recogniser.h"
#include "common.h"

namespace captcha::cli {

namespace {

struct EvalArgs {
  ReadingFlags reading;
  std::string data, errors_file, grid_file;
  int grid_count = 48;
  bool json = false, case_insensitive = false;
};

std::string percent(double fraction) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << 100 * fraction << "%";
  return out.str();
}

int run_eval(const EvalArgs& args) {
  const Recogniser recogniser = args.reading.load();
  const std::vector<Sample> samples = scan_folder(args.data);
  if (!args.errors_file.empty()) {
    std::ofstream probe(args.errors_file);
    if (!probe) throw Error(args.errors_file + ": cannot write the errors file");
  }
  if (!args.grid_file.empty()) {
    std::ofstream probe(args.grid_file + ".tmp");
    if (!probe) throw Error(args.grid_file + ": cannot write the grid image");
    probe.close();
    std::remove((args.grid_file + ".tmp").c_str());
  }

  std::vector<std::string> paths;
  for (const auto& sample : samples) paths.push_back(sample.path);
  const auto [prepared, failures] = args.reading.prepare(recogniser, paths);
  std::vector<cv::Mat> readable;
  std::vector<std::size_t> index;
  SkipReport skipped;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (prepared[i].empty()) {
      ++skipped.unreadable;
      if (skipped.examples.size() < SkipReport::kMaxExamples) skipped.examples.push_back(failures[i]);
      continue;
    }
    readable.push_back(prepared[i]);
    index.push_back(i);
  }
  if (readable.empty()) throw DatasetError(args.data + ": no readable image; " + skipped.summary());

  const auto readings = recogniser.read_prepared(readable, args.reading.read_options());
  const bool fold = args.case_insensitive || recogniser.model().fold_case;
  MetricsAccumulator metrics(fold);
  std::ofstream errors;
  if (!args.errors_file.empty()) {
    errors.open(args.errors_file);
    errors << "path\ttruth\treading\tconfidence\n";
  }
  // Truth and reading as scored (case-folded where case does not count), and which differ.
  std::vector<std::string> truths(readings.size()), texts(readings.size());
  std::vector<std::size_t> misread;
  for (std::size_t k = 0; k < readings.size(); ++k) {
    const Sample& sample = samples[index[k]];
    metrics.add(sample.label, readings[k].text);
    truths[k] = fold ? fold_label(sample.label) : sample.label;
    texts[k] = fold ? fold_label(readings[k].text) : readings[k].text;
    if (truths[k] == texts[k]) continue;
    misread.push_back(k);
    if (errors.is_open())
      errors << sample.path << '\t' << sample.label << '\t' << readings[k].text << '\t' << readings[k].confidence << '\n';
  }
  const EvaluationReport report = metrics.report();
  if (!args.grid_file.empty()) {
    // Misreads first, then correct readings, up to --grid-count images.
    std::vector<std::size_t> order = misread;
    for (std::size_t k = 0; k < readings.size(); ++k)
      if (truths[k] == texts[k]) order.push_back(k);
    if (order.size() > static_cast<std::size_t>(args.grid_count)) order.resize(args.grid_count);
    std::vector<GridCell> cells;
    for (const std::size_t k : order)
      cells.push_back({read_colour_image(samples[index[k]].path), truths[k], texts[k], readings[k].confidence});
    write_png(args.grid_file, draw_reading_grid(cells, 4));
  }

  if (args.json) {
    nlohmann::json out = {{"model", args.reading.models.front()},
                          {"models", args.reading.models},
                          {"views", args.reading.views_read(recogniser)},
                          {"beam", args.reading.beam},
                          {"data", args.data},
                          {"count", report.count},
                          {"skipped", skipped.total()},
                          {"exact_match", report.exact_match},
                          {"exact_match_case_insensitive", report.exact_match_case_insensitive},
                          {"cer", report.cer},
                          {"char_accuracy", report.char_accuracy},
                          {"per_char_accuracy", report.per_char_accuracy},
                          {"confusions", nlohmann::json::array()}};
    for (const auto& c : report.confusions)
      out["confusions"].push_back({{"truth", c.truth}, {"reading", c.reading}, {"count", c.count}});
    std::cout << out.dump(2) << "\n";
  } else {
    const auto row = [](const std::string& key, const std::string& value) {
      std::cout << std::left << std::setw(24) << key << value << "\n";
    };
    const auto exact = static_cast<std::size_t>(std::lround(report.exact_match * report.count));
    row(args.reading.models.size() > 1 ? "models" : "model", args.reading.describe(recogniser));
    row("data", args.data + " (" + std::to_string(report.count) + " images)");
    if (skipped.total()) row("skipped", skipped.summary());
    row(fold ? "exact match (no case)" : "exact match",
        percent(report.exact_match) + " (" + std::to_string(exact) + "/" + std::to_string(report.count) + ")");
    if (!fold) row("exact match (no case)", percent(report.exact_match_case_insensitive));
    row("CER", percent(report.cer));
    row("character accuracy", percent(report.char_accuracy));
    std::string confusions;
    for (const auto& c : report.confusions)
      confusions += (confusions.empty() ? "" : ", ") + (c.truth.empty() ? "+" : c.truth) + "->" +
                    (c.reading.empty() ? "(dropped)" : c.reading) + " x" + std::to_string(c.count);
    row("most frequent errors", confusions.empty() ? "none" : confusions);
    std::string weakest;
    std::vector<std::pair<double, std::string>> by_accuracy;
    for (const auto& [symbol, accuracy] : report.per_char_accuracy) by_accuracy.push_back({accuracy, symbol});
    std::sort(by_accuracy.begin(), by_accuracy.end());
    for (std::size_t i = 0; i < std::min<std::size_t>(5, by_accuracy.size()); ++i)
      weakest += (i ? ", " : "") + by_accuracy[i].second + " " + percent(by_accuracy[i].first);
    row("weakest characters", weakest);
    if (!args.errors_file.empty()) row("misreads written to", args.errors_file);
    if (!args.grid_file.empty()) row("grid written to", args.grid_file);
  }
  return kExitOk;
}

}  // namespace

void register_eval(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("eval", "Measure a model on a labelled folder");
  auto args = std::make_shared<EvalArgs>();
  args->reading.add_to(*cmd);
  cmd->add_option("--data", args->data, "Folder of labelled images")->required();
  cmd->add_flag("--json", args->json, "Print the figures as JSON (fractions, not percent)");
  cmd->add_option("--errors", args->errors_file, "Write each misread image (path, truth, reading, confidence) as TSV");
  cmd->add_option("--grid", args->grid_file, "Write a PNG grid of images with their readings (misreads first, marked)");
  cmd->add_option("--grid-count", args->grid_count, "Images in the --grid")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_flag("--case-insensitive", args->case_insensitive, "Score ignoring letter case");
  cmd->callback([&run, args] { run = [args] { return run_eval(*args); }; });
}

}  // namespace captcha::cli
