// Reading CAPTCHAs with a trained model file, on the inference engine (captcha/inference.h;
// no LibTorch).
//
// Basic usage:
//   captcha::Recogniser recogniser("run/best.safetensors");
//   captcha::Reading r = recogniser.read(captcha::load_image("abc12.png"));
//   std::cout << r.text << " " << r.confidence << "\n";
//
// Reading more carefully, at a multiple of the cost: several views of each image (test-time
// augmentation, ReadOptions::views; a model file says how many it reads by default) and several
// independently trained models of one task (an ensemble: the constructor taking several files).
// Either way the per-step probabilities are averaged before decoding.
//
// One loaded Recogniser may be used from several threads at once: reading does not modify it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "captcha/image.h"
#include "captcha/inference.h"
#include "captcha/model_file.h"
#include "captcha/preprocess.h"

namespace captcha {

struct Reading {
  std::string text;
  // As decode() reads: the reading's probability (its alignments summed) where the best path's
  // labelling is taken without a search; its share of the probability mass kept in the beam
  // after a search; with beam_width <= 1, the product of char_probabilities.
  float confidence = 0;
  std::vector<float> char_probabilities;  // one per character of `text`
  // One per character of `text`: how sure the reading is of its case (see case_probabilities()
  // in ctc_decode.h); 1 for symbols without another case.
  std::vector<float> case_probabilities;
  // With ReadOptions::step_probabilities: the network's output distribution at each time step,
  // time steps x classes row-major (class 0 the CTC blank, class i the charset's symbol i - 1).
  std::vector<float> step_probabilities;
};

// The prefix beam search's width when reading, unless asked otherwise (see decode(): confident
// readings need no search). It finds the labelling that all of its alignments together make most
// probable, where the best path takes the single most probable alignment: on the test sets it
// reads as many or more images right, in the same time.
inline constexpr int kDefaultBeamWidth = 10;

struct ReadOptions {
  int beam_width = kDefaultBeamWidth;  // <= 1: greedy decoding (the best path)
  std::string allowed;        // restrict the output to these symbols ("" = all)
  bool any_length = false;    // ignore the label lengths seen in training (model.label_lengths)
  int batch_size = 64;        // images per forward pass in read_batch
  int views = 0;              // views of each image (see reading_view); 0: the model's own choice
  bool step_probabilities = false;  // keep each time step's distribution in the Reading
};

class Recogniser {
 public:
  // Loads the model file. Throws ModelFileError. `threads` <= 0 uses every core: the threads the
  // engine's parallel loops use from the calling thread on (see set_inference_threads).
  // `precision`: kInt8 quantises the weights at load (see Precision).
  explicit Recogniser(const std::string& model_path, int threads = 0, Precision precision = Precision::kFloat32);
  // An ensemble: reads with every model, averaging their per-step probabilities. The models must
  // share charset, case folding, label lengths, preprocessing and time steps (ModelFileError
  // naming the first file that does not); model() and the default views are the first's.
  explicit Recogniser(const std::vector<std::string>& model_paths, int threads = 0,
                      Precision precision = Precision::kFloat32);
  ~Recogniser();
  Recogniser(Recogniser&&) noexcept;
  Recogniser& operator=(Recogniser&&) noexcept;

  const ModelFile& model() const;
  int ensemble_size() const;
  // The preprocessing used by prepare(): the model's settings; callers may override flags
  // (auto_crop, force_invert, strong) before reading.
  PreprocessOptions& preprocess_options();

  // Preprocesses a decoded 8-bit grey image (see load_image / decode_image).
  Image prepare(const Image& grey) const;

  // Reads preprocessed images (from prepare()), in batches of options.batch_size.
  std::vector<Reading> read_prepared(const std::vector<Image>& prepared,
                                     const ReadOptions& options = {}) const;
  // Convenience: prepare + read one decoded grey image.
  Reading read(const Image& grey, const ReadOptions& options = {}) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace captcha
