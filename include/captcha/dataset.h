// Labelled image folders: scanning, loading into memory (preprocessed, uint8), splitting.
//
// A dataset is a folder of images (png, jpg, jpeg, bmp, gif, webp, pgm, ppm, tga); the label is the
// file name without its extension. A labels.tsv (file<TAB>label) in the folder overrides names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "captcha/charset.h"
#include "captcha/preprocess.h"

namespace captcha {

struct Sample {
  std::string path;
  std::string label;
  // Why the label cannot be trusted (e.g. labels.tsv gives the file two different labels);
  // empty where it can. Loading and evaluation count and name such samples as skipped.
  std::string problem;
};

// Lists the labelled images of `folder`, sorted by path. Throws DatasetError when the folder is
// missing or holds no image, or labels.tsv is malformed.
std::vector<Sample> scan_folder(const std::string& folder);

// Lists image files (not labels) under each path: files are taken as they are, folders are
// scanned (not recursively), sorted. Throws DatasetError for a missing path.
std::vector<std::string> list_images(const std::vector<std::string>& paths);

// The median width and height of up to `max_images` of `samples`, evenly spaced through the
// list; unreadable files are passed over. {0, 0} when none can be read.
ImageSize median_image_size(const std::vector<Sample>& samples, std::size_t max_images = 101);

// Deterministic split: shuffles with `seed` and moves round(fraction * n) samples to the second.
void split_samples(std::vector<Sample> all, double fraction, std::uint64_t seed,
                   std::vector<Sample>& kept, std::vector<Sample>& held_out);

// Why samples were skipped while loading; the first few are named.
struct SkipReport {
  std::size_t unreadable = 0;
  std::size_t outside_charset = 0;
  std::size_t too_long = 0;  // needs more time steps than the model has
  std::size_t empty_label = 0;
  std::size_t ambiguous_label = 0;  // labels.tsv gives the file two different labels
  std::vector<std::string> examples;  // "path: reason", at most kMaxExamples
  static constexpr std::size_t kMaxExamples = 5;
  std::size_t total() const { return unreadable + outside_charset + too_long + empty_label + ambiguous_label; }
  // Counts one sample under `counter` (one of the counts above) and names it among the examples
  // while there is room.
  void add(std::size_t& counter, const std::string& why);
  std::string summary() const;  // one line, "" when nothing was skipped
};

// Whether `sample`'s label can be used at all: not where labels.tsv gives it two labels or it is
// not UTF-8; such a sample is counted and named in `skipped`.
bool has_usable_label(const Sample& sample, SkipReport& skipped);

// Decoded, preprocessed images with their encoded labels, held in memory.
struct LoadedDataset {
  std::vector<Image> images;                 // grey, preprocessed: width x height
  std::vector<std::string> labels;           // as used (case folded where asked)
  std::vector<std::vector<int>> targets;     // class indices
  std::vector<std::string> paths;
  SkipReport skipped;
  std::size_t size() const { return images.size(); }
};

struct LoadOptions {
  int max_time_steps = 0;    // skip labels CTC cannot emit in this many steps; 0: no limit
  bool fold_case = false;    // lower-case labels before encoding
  int threads = 0;           // 0: all cores
};

// Decodes and preprocesses every sample in parallel, skipping (and counting) unreadable images
// and labels that the charset cannot encode or that are too long. Throws DatasetError naming
// `what` when no usable image remains.
LoadedDataset load_dataset(const std::vector<Sample>& samples, const Charset& charset,
                           const PreprocessOptions& preprocess_options, const LoadOptions& options,
                           const std::string& what);

// ASCII lower case of a UTF-8 label.
std::string fold_label(const std::string& label);

}  // namespace captcha
