// Dataset folders: scanning, labels.tsv, splitting, and parallel decode + preprocess.
#include "captcha/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "captcha/errors.h"
#include "captcha/model_config.h"
#include "captcha/parallel.h"
#include "captcha/utf8.h"

namespace fs = std::filesystem;

namespace captcha {

namespace {

bool is_image_file(const fs::path& path) {
  static const std::set<std::string> kExtensions = {".png", ".jpg", ".jpeg", ".bmp", ".gif",
                                                    ".webp", ".pgm", ".ppm", ".tga"};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return kExtensions.count(ext) > 0;
}

// A file's label in labels.tsv, with the line it came from; `problem` where another line gives
// the same file another label.
struct TsvLabel {
  std::string label;
  int line = 0;
  std::string problem;
};

std::map<std::string, TsvLabel> read_labels_tsv(const fs::path& file) {
  std::map<std::string, TsvLabel> labels;
  std::ifstream in(file);
  if (!in) throw DatasetError(file.string() + ": cannot read");
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    if (tab == std::string::npos)
      throw DatasetError(file.string() + ":" + std::to_string(number) +
                         ": expected file<TAB>label");
    const std::string name = line.substr(0, tab), label = line.substr(tab + 1);
    const auto [it, added] = labels.emplace(name, TsvLabel{label, number, ""});
    if (!added && it->second.label != label && it->second.problem.empty())
      it->second.problem = "labels.tsv gives it two labels (lines " + std::to_string(it->second.line) + " and " +
                           std::to_string(number) + ")";
  }
  return labels;
}

}  // namespace

std::vector<Sample> scan_folder(const std::string& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw DatasetError(folder + ": no such folder");
  std::map<std::string, TsvLabel> overrides;
  const fs::path tsv = fs::path(folder) / "labels.tsv";
  if (fs::exists(tsv)) overrides = read_labels_tsv(tsv);

  std::vector<Sample> samples;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    if (!entry.is_regular_file(ec) || !is_image_file(entry.path())) continue;
    const std::string name = entry.path().filename().string();
    const auto it = overrides.find(name);
    if (it == overrides.end())
      samples.push_back({entry.path().string(), entry.path().stem().string(), ""});
    else
      samples.push_back({entry.path().string(), it->second.label, it->second.problem});
  }
  if (ec) throw DatasetError(folder + ": cannot list (" + ec.message() + ")");
  if (samples.empty())
    throw DatasetError(folder + ": no images found (png, jpg, bmp, gif, webp, pgm, ppm, tga)");
  std::sort(samples.begin(), samples.end(),
            [](const Sample& a, const Sample& b) { return a.path < b.path; });
  return samples;
}

std::vector<std::string> list_images(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(path, ec))
        if (entry.is_regular_file(ec) && is_image_file(entry.path()))
          found.push_back(entry.path().string());
      if (found.empty()) throw DatasetError(path + ": no images found");
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (path == "-" || fs::exists(path, ec)) {
      files.push_back(path);
    } else {
      throw DatasetError(path + ": no such file or folder");
    }
  }
  return files;
}

ImageSize median_image_size(const std::vector<Sample>& samples, std::size_t max_images) {
  std::vector<int> widths, heights;
  const std::size_t count = std::min(samples.size(), max_images);
  for (std::size_t i = 0; i < count; ++i) {
    try {
      const Image image = load_image(samples[i * samples.size() / count].path);
      widths.push_back(image.width());
      heights.push_back(image.height());
    } catch (const ImageError&) {
      // load_dataset reports unreadable files.
    }
  }
  if (widths.empty()) return {0, 0};
  const auto median = [](std::vector<int>& values) {
    std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
    return values[values.size() / 2];
  };
  return {median(widths), median(heights)};
}

void split_samples(std::vector<Sample> all, double fraction, std::uint64_t seed,
                   std::vector<Sample>& kept, std::vector<Sample>& held_out) {
  if (fraction <= 0 || fraction >= 1) throw ConfigError("validation fraction must be in (0, 1)");
  std::mt19937_64 rng(seed);
  // Fisher-Yates with our own index draw: std::shuffle's sequence differs between libraries.
  for (std::size_t i = all.size(); i > 1; --i) std::swap(all[i - 1], all[rng() % i]);
  const auto count = static_cast<std::size_t>(std::lround(fraction * all.size()));
  if (count == 0 || count >= all.size())
    throw DatasetError("cannot hold out " + std::to_string(fraction) + " of " +
                       std::to_string(all.size()) + " images for validation");
  held_out.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(count));
  kept.assign(all.begin() + static_cast<std::ptrdiff_t>(count), all.end());
  const auto by_path = [](const Sample& a, const Sample& b) { return a.path < b.path; };
  std::sort(kept.begin(), kept.end(), by_path);
  std::sort(held_out.begin(), held_out.end(), by_path);
}

std::string fold_label(const std::string& label) { return u32_to_utf8(fold_case(utf8_to_u32(label))); }

std::string SkipReport::summary() const {
  if (total() == 0) return "";
  std::string text = "skipped " + std::to_string(total()) + " (";
  std::vector<std::string> parts;
  if (unreadable) parts.push_back(std::to_string(unreadable) + " unreadable");
  if (outside_charset) parts.push_back(std::to_string(outside_charset) + " outside the charset");
  if (too_long) parts.push_back(std::to_string(too_long) + " too long for the model");
  if (empty_label) parts.push_back(std::to_string(empty_label) + " with an empty label");
  if (ambiguous_label) parts.push_back(std::to_string(ambiguous_label) + " with two labels");
  for (std::size_t i = 0; i < parts.size(); ++i) text += (i ? ", " : "") + parts[i];
  text += ")";
  for (std::size_t i = 0; i < examples.size(); ++i) text += (i ? "; " : ": ") + examples[i];
  return text;
}

void SkipReport::add(std::size_t& counter, const std::string& why) {
  ++counter;
  if (examples.size() < kMaxExamples) examples.push_back(why);
}

bool has_usable_label(const Sample& sample, SkipReport& skipped) {
  if (!sample.problem.empty()) {
    skipped.add(skipped.ambiguous_label, sample.path + ": " + sample.problem);
    return false;
  }
  if (!is_valid_utf8(sample.label)) {
    skipped.add(skipped.outside_charset, sample.path + ": label is not valid UTF-8");
    return false;
  }
  return true;
}

LoadedDataset load_dataset(const std::vector<Sample>& samples, const Charset& charset,
                           const PreprocessOptions& preprocess_options, const LoadOptions& options,
                           const std::string& what) {
  LoadedDataset out;
  SkipReport& skipped = out.skipped;
  // Labels first (cheap, serial), then decode the images that remain in parallel.
  std::vector<std::size_t> keep;
  std::vector<std::string> labels;
  std::vector<std::vector<int>> targets;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (!has_usable_label(samples[i], skipped)) continue;
    std::string label = options.fold_case ? fold_label(samples[i].label) : samples[i].label;
    const std::u32string code_points = utf8_to_u32(label);
    if (code_points.empty()) {
      skipped.add(skipped.empty_label, samples[i].path + ": empty label");
      continue;
    }
    if (!charset.can_encode(code_points)) {
      skipped.add(skipped.outside_charset, samples[i].path + ": label \"" + label + "\" has symbols outside the charset");
      continue;
    }
    std::vector<int> target = charset.encode(label);
    if (options.max_time_steps > 0 && required_time_steps(target) > options.max_time_steps) {
      skipped.add(skipped.too_long, samples[i].path + ": label \"" + label + "\" needs " +
                                        std::to_string(required_time_steps(target)) + " time steps, the model has " +
                                        std::to_string(options.max_time_steps));
      continue;
    }
    keep.push_back(i);
    labels.push_back(std::move(label));
    targets.push_back(std::move(target));
  }

  std::vector<Image> images(keep.size());
  std::vector<std::string> errors(keep.size());
  parallel_for(keep.size(), options.threads, [&](std::size_t k) {
    try {
      images[k] = preprocess(load_image(samples[keep[k]].path), preprocess_options);
    } catch (const std::exception& e) {  // one image's failure, whatever it is, skips that image only
      errors[k] = message_naming(samples[keep[k]].path, e);
    }
  });

  for (std::size_t k = 0; k < keep.size(); ++k) {
    if (images[k].empty()) {
      skipped.add(skipped.unreadable, errors[k]);
      continue;
    }
    out.images.push_back(std::move(images[k]));
    out.labels.push_back(std::move(labels[k]));
    out.targets.push_back(std::move(targets[k]));
    out.paths.push_back(samples[keep[k]].path);
  }
  if (out.images.empty()) {
    std::string reason = skipped.summary();
    throw DatasetError(what + ": no usable image" + (reason.empty() ? "" : "; " + reason));
  }
  return out;
}

}  // namespace captcha
