// The model file: safetensors layout round trip, metadata, and clear errors for truncated,
// foreign and wrong-version files.
#include "captcha/model_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "captcha/errors.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

using testing::TempDir;

ModelFile sample_model() {
  ModelFile m;
  m.charset = Charset("abc");
  m.fold_case = true;
  m.label_lengths = {4, 6};
  m.reading_views = kMaxReadingViews;
  m.preprocess.width = 120;
  m.preprocess.resize = ResizeMode::kKeepAspect;
  m.config.rnn = RnnType::kGru;
  m.config.rnn_hidden = {32, 16};
  m.training = {{"epochs", 3}};
  const float values[6] = {1, -2, 3.5f, 0, 1e-7f, 6};
  m.tensors["layer.weight"] = Tensor::from_f32({2, 3}, values);
  m.tensors["layer.bias"] = Tensor::from_f32({0}, nullptr);
  return m;
}

std::string expect_model_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no ModelFileError for " << path;
  return "";
}

TEST(ModelFile, RoundTrip) {
  TempDir dir("model");
  save_model(dir / "m.safetensors", sample_model());
  const ModelFile back = load_model(dir / "m.safetensors");
  EXPECT_EQ(back.charset.symbols_utf8(), "abc");
  EXPECT_TRUE(back.fold_case);
  EXPECT_EQ(back.label_lengths.min, 4);
  EXPECT_EQ(back.label_lengths.max, 6);
  EXPECT_EQ(back.reading_views, kMaxReadingViews);
  EXPECT_EQ(back.preprocess.width, 120);
  EXPECT_EQ(back.preprocess.resize, ResizeMode::kKeepAspect);
  EXPECT_EQ(back.config.rnn, RnnType::kGru);
  EXPECT_EQ(back.config.rnn_hidden, (std::vector<int>{32, 16}));
  EXPECT_EQ(back.training.at("epochs"), 3);
  EXPECT_TRUE(back.checkpoint.is_null());
  ASSERT_EQ(back.tensors.size(), 2u);
  const Tensor& w = back.tensors.at("layer.weight");
  EXPECT_EQ(w.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(w.bytes.data(), sample_model().tensors.at("layer.weight").bytes.data(), 24), 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors.tmp"));
}

TEST(ModelFile, LayoutIsPublicSafetensors) {
  TempDir dir("layout");
  save_model(dir / "m.safetensors", sample_model());
  const std::string bytes = testing::read_file(dir / "m.safetensors");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  EXPECT_EQ(header.at("__metadata__").at("format"), "captcha-ocr");
  EXPECT_EQ(header.at("__metadata__").at("charset"), "abc");
  EXPECT_EQ(header.at("layer.weight").at("dtype"), "F32");
  const auto offsets = header.at("layer.weight").at("data_offsets").get<std::vector<std::uint64_t>>();
  EXPECT_EQ(offsets[1] - offsets[0], 24u);
  EXPECT_EQ(bytes.size(), 8 + header_size + 24);
  EXPECT_EQ((8 + header_size) % 8, 0u);
}

TEST(ModelFile, TruncatedFilesAreRejected) {
  TempDir dir("truncated");
  save_model(dir / "m.safetensors", sample_model());
  const std::string bytes = testing::read_file(dir / "m.safetensors");
  for (std::size_t keep : {std::size_t{0}, std::size_t{5}, std::size_t{40}, bytes.size() - 1}) {
    testing::write_file(dir / "cut.safetensors", bytes.substr(0, keep));
    expect_model_error(dir / "cut.safetensors");
  }
}

// A file over the size limit is refused before it is read; one from memory reads as from a file.
TEST(ModelFile, SizeLimitAndReadingFromMemory) {
  TempDir dir("limit");
  save_model(dir / "m.safetensors", sample_model());
  const std::string bytes = testing::read_file(dir / "m.safetensors");
  try {
    read_model_bytes(dir / "m.safetensors", 100);
    ADD_FAILURE() << "read a model over the size limit";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("over the model file limit of 100 bytes"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_model_bytes(dir.path()), ModelFileError);  // a folder
  const ModelFile m = parse_model(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "upload");
  EXPECT_EQ(m.charset.symbols_utf8(), "abc");
  EXPECT_EQ(m.tensors.at("layer.weight").bytes, sample_model().tensors.at("layer.weight").bytes);
  try {
    parse_model(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size() / 2, "upload");
    ADD_FAILURE() << "parsed half a model";
  } catch (const ModelFileError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("upload: ", 0), 0u) << e.what();
  }
}

TEST(ModelFile, ForeignFilesAreRejected) {
  TempDir dir("foreign");
  testing::write_file(dir / "png.safetensors", "\x89PNG\r\n\x1a\n and then some bytes");
  expect_model_error(dir / "png.safetensors");
  // A valid safetensors file that is not ours.
  SafetensorsFile other;
  other.metadata["format"] = "pt";
  const float one = 1;
  other.tensors["w"] = Tensor::from_f32({1}, &one);
  write_safetensors(dir / "other.safetensors", other);
  EXPECT_NE(expect_model_error(dir / "other.safetensors").find("not a captcha-ocr model"), std::string::npos);
  expect_model_error(dir / "missing.safetensors");
}

TEST(ModelFile, WrongVersionSaysWhatToDo) {
  TempDir dir("version");
  save_model(dir / "m.safetensors", sample_model());
  SafetensorsFile raw = read_safetensors(dir / "m.safetensors");
  raw.metadata["format_version"] = "99";
  write_safetensors(dir / "v99.safetensors", raw);
  EXPECT_NE(expect_model_error(dir / "v99.safetensors").find("version 99"), std::string::npos);
}

// Files written before reading_views existed read one view; a bad count is refused.
TEST(ModelFile, ReadingViewsDefaultToOneAndAreChecked) {
  TempDir dir("views");
  save_model(dir / "m.safetensors", sample_model());
  SafetensorsFile raw = read_safetensors(dir / "m.safetensors");
  raw.metadata.erase("reading_views");
  write_safetensors(dir / "old.safetensors", raw);
  EXPECT_EQ(load_model(dir / "old.safetensors").reading_views, 1);
  for (const char* bad : {"0", "8", "3x", ""}) {
    raw.metadata["reading_views"] = bad;
    write_safetensors(dir / "bad.safetensors", raw);
    EXPECT_NE(expect_model_error(dir / "bad.safetensors").find("reading_views"), std::string::npos) << bad;
  }
}

TEST(ModelFile, InconsistentHeaderIsRejected) {
  TempDir dir("inconsistent");
  save_model(dir / "m.safetensors", sample_model());
  std::string bytes = testing::read_file(dir / "m.safetensors");
  // Claim a bigger shape than the bytes hold: [2,3] -> [2,4].
  const auto at = bytes.find("[2,3]");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 3] = '4';
  testing::write_file(dir / "bad.safetensors", bytes);
  expect_model_error(dir / "bad.safetensors");
  // Broken metadata JSON.
  SafetensorsFile raw = read_safetensors(dir / "m.safetensors");
  raw.metadata["architecture"] = "{not json";
  write_safetensors(dir / "meta.safetensors", raw);
  expect_model_error(dir / "meta.safetensors");
}

// Architecture sizes past the bounds are refused when the file is read, before any network is
// built from them.
TEST(ModelFile, ArchitectureSizesPastTheBoundsAreRejected) {
  for (const char* field : {"conv_channels", "dense", "rnn_hidden"}) {
    nlohmann::json architecture = ModelConfig{};
    architecture[field] = std::string(field) == "dense" ? nlohmann::json(1 << 20) : nlohmann::json({1 << 20, 64});
    EXPECT_THROW(architecture.get<ModelConfig>(), ConfigError) << field;
  }
  nlohmann::json deep = ModelConfig{};
  deep["rnn_hidden"] = std::vector<int>(ModelConfig::kMaxRnnLayers + 1, 16);
  EXPECT_THROW(deep.get<ModelConfig>(), ConfigError);
}

// A shape whose element count overflows 64 bits (here to 0 bytes, matching empty data offsets)
// is refused, not taken as an empty tensor.
TEST(ModelFile, AShapeWhoseSizeOverflowsIsRejected) {
  TempDir dir("overflow");
  const std::string header = R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(header.size() >> (8 * i));
  testing::write_file(dir / "overflow.safetensors", bytes + header);
  try {
    read_safetensors(dir / "overflow.safetensors");
    FAIL() << "read a tensor of 2^64 elements in no bytes";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor x size does not match its shape"), std::string::npos) << e.what();
  }
}

// An int8 export of the bundled model: its weight matrices in 8 bits per output channel (the
// classifier's and the convolutions' kept), a third of the bytes, each weight back within half
// a step of its float value; a plain export keeps the network's weights as they are.
TEST(ModelFile, Int8ExportStoresMatricesInEightBitsAndReadsThemBack) {
  TempDir dir("int8");
  const std::string source = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";
  const ModelFile model = load_model(source);
  save_model(dir / "int8.safetensors", exported_model(model, true, source));
  save_model(dir / "float.safetensors", exported_model(model, false, source));
  EXPECT_LT(std::filesystem::file_size(dir / "int8.safetensors"), std::filesystem::file_size(source) * 2 / 5);
  const SafetensorsFile raw = read_safetensors(dir / "int8.safetensors");
  EXPECT_EQ(raw.metadata.at("precision"), "int8");
  EXPECT_EQ(raw.tensors.at("dense.weight").dtype, DType::kI8);
  EXPECT_EQ(raw.tensors.at("rnn1.weight_hh_l0_reverse").dtype, DType::kI8);
  EXPECT_EQ(raw.tensors.at("dense.weight_scale").shape, (std::vector<std::int64_t>{256}));
  EXPECT_EQ(raw.tensors.at("classifier.weight").dtype, DType::kF32);
  EXPECT_EQ(raw.tensors.at("conv2.weight").dtype, DType::kF32);

  const ModelFile back = load_model(dir / "int8.safetensors");
  EXPECT_TRUE(back.int8);
  const ModelFile plain = load_model(dir / "float.safetensors");
  EXPECT_FALSE(plain.int8);
  ASSERT_EQ(back.tensors.size(), plain.tensors.size());
  for (const auto& [name, tensor] : plain.tensors) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    const Tensor& q = back.tensors.at(name);
    ASSERT_EQ(q.dtype, tensor.dtype) << name;
    ASSERT_EQ(q.shape, tensor.shape) << name;
    if (tensor.dtype != DType::kF32 || tensor.shape.size() != 2 || name == "classifier.weight") {
      EXPECT_EQ(q.bytes, tensor.bytes) << name << " changed";
      continue;
    }
    const std::size_t rows = tensor.shape[0], cols = tensor.shape[1];
    for (std::size_t r = 0; r < rows; ++r) {
      float largest = 0;
      for (std::size_t c = 0; c < cols; ++c) largest = std::max(largest, std::abs(tensor.f32()[r * cols + c]));
      for (std::size_t c = 0; c < cols; ++c)
        ASSERT_NEAR(q.f32()[r * cols + c], tensor.f32()[r * cols + c], largest / 127 * 0.501) << name << " row " << r;
    }
  }
  for (const auto& [name, tensor] : model.tensors)
    if (!is_network_weight(name)) EXPECT_FALSE(plain.tensors.count(name)) << name << " exported";
}

TEST(ModelFile, EightBitTensorsWithoutTheirScalesAreRefused) {
  TempDir dir("int8-bad");
  ModelFile m = sample_model();
  Tensor q;
  q.dtype = DType::kI8;
  q.shape = {2, 3};
  q.bytes = {1, 2, 3, 4, 5, 6};
  m.tensors["layer.weight"] = q;
  save_model(dir / "no-scale.safetensors", m);
  std::string message = expect_model_error(dir / "no-scale.safetensors");
  EXPECT_NE(message.find("layer.weight_scale"), std::string::npos) << message;
  const float three[3] = {1, 1, 1};
  m.tensors["layer.weight_scale"] = Tensor::from_f32({3}, three);  // a scale per row: 2, not 3
  save_model(dir / "wrong-scale.safetensors", m);
  message = expect_model_error(dir / "wrong-scale.safetensors");
  EXPECT_NE(message.find("layer.weight"), std::string::npos) << message;
  const float two[2] = {0.5f, 2};
  m.tensors["layer.weight_scale"] = Tensor::from_f32({2}, two);
  save_model(dir / "good.safetensors", m);
  const ModelFile back = load_model(dir / "good.safetensors");
  ASSERT_EQ(back.tensors.at("layer.weight").dtype, DType::kF32);
  EXPECT_EQ(back.tensors.count("layer.weight_scale"), 0u);
  EXPECT_FLOAT_EQ(back.tensors.at("layer.weight").f32()[4], 10.0f);  // 5 x 2
}

}  // namespace
}  // namespace captcha
