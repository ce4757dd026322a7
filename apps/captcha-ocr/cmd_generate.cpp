// captcha-ocr generate: draws labelled synthetic CAPTCHAs into a folder.
#include <iostream>
#include <regex>

#include "captcha/errors.h"
#include "captcha/generator.h"
#include "common.h"

namespace captcha::cli {

namespace {

// "5" or "4-6".
void parse_length(const std::string& text, GenerateOptions& o) {
  std::smatch m;
  if (!std::regex_match(text, m, std::regex(R"((\d{1,3})(?:-(\d{1,3}))?)")))
    throw ConfigError("--length must be N or MIN-MAX, e.g. 4-6 (got '" + text + "')");
  o.min_length = std::stoi(m[1]);
  o.max_length = m[2].matched ? std::stoi(m[2]) : o.min_length;
}

// "200x50".
void parse_size(const std::string& text, GenerateOptions& o) {
  std::smatch m;
  if (!std::regex_match(text, m, std::regex(R"((\d{1,5})x(\d{1,5}))")))
    throw ConfigError("--size must be WIDTHxHEIGHT, e.g. 200x50 (got '" + text + "')");
  o.width = std::stoi(m[1]);
  o.height = std::stoi(m[2]);
}

}  // namespace

void register_generate(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("generate", kGenerateDescription);
  auto options = std::make_shared<GenerateOptions>();
  auto length = std::make_shared<std::string>("4-6");
  auto size = std::make_shared<std::string>("200x50");
  GenerateOptions& o = *options;
  std::string style_help = "Style:";
  for (const auto& [name, description] : generator_styles()) style_help += "\n  " + name + ": " + description;
  cmd->add_option("--out", o.out_dir, "Folder to fill (new or empty)")->required();
  cmd->add_option("--count", o.count, "Number of images")->capture_default_str()->check(kPositive);
  cmd->add_option("--style", o.style, style_help)->capture_default_str();
  cmd->add_option("--charset", o.charset, "digits, lower, upper, alnum, alnum-lower or literal symbols")
      ->capture_default_str();
  cmd->add_option("--label-case", o.label_case,
                  "any (each symbol from the whole charset) or one (each label's letters all lower-case or all "
                  "capitals, half the labels each)")
      ->capture_default_str()
      ->check(CLI::IsMember({"any", "one"}));
  cmd->add_option("--length", *length, "Symbols per label: N or MIN-MAX")->capture_default_str();
  cmd->add_option("--size", *size, "Image size WIDTHxHEIGHT")->capture_default_str();
  cmd->add_option("--format", o.format, "png or jpg")->capture_default_str()->check(CLI::IsMember({"png", "jpg"}));
  cmd->add_option("--seed", o.seed, "Random seed (same seed and fonts, same bytes)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads (default: every core)");
  cmd->add_option("--fonts", o.font_dirs, "Font folders to use instead of the installed Debian fonts")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--font-set", o.font_set,
                  "all (classic and display faces), classic (the sans, serif, mono and handwriting faces the "
                  "bundled model's stages 1-5 were drawn with), extended (all and 13 more families) or held-out "
                  "(families in no other set, to check reading faces never trained on)")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "classic", "extended", "held-out"}));
  cmd->callback([&run, options, length, size] {
    run = [options, length, size]() -> int {
      GenerateOptions o = *options;
      parse_length(*length, o);
      parse_size(*size, o);
      generate(o, std::cerr);
      return kExitOk;
    };
  });
}

}  // namespace captcha::cli
