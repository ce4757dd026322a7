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
#include "captcha/reader.h"
#include "common.h"
#include "drawing.h"

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

// Checks that the output files can be written before any reading starts.
void check_writable(const EvalArgs& args) {
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
}

void print_json(const EvalArgs& args, const Recogniser& recogniser, const Evaluation& evaluation) {
  const EvaluationReport& report = evaluation.figures;
  nlohmann::json out = {{"model", args.reading.models.front()},
                        {"models", args.reading.models},
                        {"views", args.reading.views_read(recogniser)},
                        {"beam", args.reading.beam},
                        {"data", args.data},
                        {"count", report.count},
                        {"skipped", evaluation.skipped.total()},
                        {"exact_match", report.exact_match},
                        {"exact_match_case_insensitive", report.exact_match_case_insensitive},
                        {"case_only_errors", report.case_only_errors},
                        {"cer", report.cer},
                        {"char_accuracy", report.char_accuracy},
                        {"per_char_accuracy", report.per_char_accuracy},
                        {"confusions", nlohmann::json::array()}};
  for (const auto& c : report.confusions)
    out["confusions"].push_back({{"truth", c.truth}, {"reading", c.reading}, {"count", c.count}});
  out["case_calibration"] = nlohmann::json::array();
  for (const auto& bin : report.case_calibration)
    out["case_calibration"].push_back({{"from", bin.from}, {"to", bin.to}, {"letters", bin.letters},
                                       {"right_case", bin.right_case}, {"mean_probability", bin.mean_probability}});
  std::cout << out.dump(2) << "\n";
}

void print_table(const EvalArgs& args, const Recogniser& recogniser, const Evaluation& evaluation) {
  const EvaluationReport& report = evaluation.figures;
  const bool fold = evaluation.case_insensitive;
  const auto row = [](const std::string& key, const std::string& value) {
    std::cout << std::left << std::setw(26) << key << value << "\n";
  };
  const auto exact = static_cast<std::size_t>(std::lround(report.exact_match * report.count));
  row(args.reading.models.size() > 1 ? "models" : "model", args.reading.describe(recogniser));
  row("data", args.data + " (" + std::to_string(report.count) + " images)");
  if (evaluation.skipped.total()) row("skipped", evaluation.skipped.summary());
  row(fold ? "exact match (no case)" : "exact match",
      percent(report.exact_match) + " (" + std::to_string(exact) + "/" + std::to_string(report.count) + ")");
  if (!fold) {
    row("exact match (no case)", percent(report.exact_match_case_insensitive));
    row("misread only in case", std::to_string(report.case_only_errors) + " images");
    for (const auto& bin : report.case_calibration) {
      std::ostringstream range;
      range << std::fixed << std::setprecision(2) << "[" << bin.from << ", " << bin.to << (bin.to < 1 ? ")" : "]");
      row(&bin == &report.case_calibration.front() ? "case, by its probability" : "",
          range.str() + " " + std::to_string(bin.letters) + (bin.letters == 1 ? " letter, " : " letters, ") +
              percent(static_cast<double>(bin.right_case) / bin.letters) + " in the right case (mean p " +
              percent(bin.mean_probability) + ")");
    }
  }
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

int run_eval(const EvalArgs& args) {
  if (!args.grid_file.empty()) draw_in_full_tool_if_needed();
  const Recogniser recogniser = args.reading.load();
  check_writable(args);
  const Evaluation evaluation = evaluate(recogniser, args.data, args.reading.batch_options(), args.case_insensitive);
  if (!args.errors_file.empty()) write_misreads(evaluation, args.errors_file);
  if (!args.grid_file.empty()) write_evaluation_grid(evaluation, args.grid_file, static_cast<std::size_t>(args.grid_count));
  if (args.json) {
    print_json(args, recogniser, evaluation);
  } else {
    print_table(args, recogniser, evaluation);
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
  cmd->add_option("--grid-count", args->grid_count, "Images in the --grid")->capture_default_str()->check(kPositive);
  cmd->add_flag("--case-insensitive", args->case_insensitive, "Score ignoring letter case");
  cmd->callback([&run, args] { run = [args] { return run_eval(*args); }; });
}

}  // namespace captcha::cli
