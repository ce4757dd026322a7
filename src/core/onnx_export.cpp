// ONNX export: the graph is built node by node and encoded in protobuf's wire format by hand.
// Field numbers are those of onnx.proto (ONNX 1.12, IR version 8).
#include "captcha/onnx_export.h"

#include <cstring>

#include "captcha/atomic_file.h"
#include "captcha/errors.h"
#include "captcha/network_spec.h"
#include "captcha/utf8.h"

namespace captcha {

namespace {

// Protobuf wire format: each field is a varint key (number << 3 | wire type) then the value.
class Message {
 public:
  Message& varint(int field, std::uint64_t value) {
    key(field, 0);
    put_varint(value);
    return *this;
  }
  Message& bytes(int field, const std::string& value) {
    key(field, 2);
    put_varint(value.size());
    out_ += value;
    return *this;
  }
  Message& message(int field, const Message& value) { return bytes(field, value.out_); }
  Message& fixed32(int field, float value) {
    key(field, 5);
    char raw[4];
    std::memcpy(raw, &value, 4);  // little-endian machine, as the wire format
    out_.append(raw, 4);
    return *this;
  }
  const std::string& encoded() const { return out_; }

 private:
  void key(int field, int wire_type) { put_varint((static_cast<std::uint64_t>(field) << 3) | wire_type); }
  void put_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

// onnx.proto enums.
constexpr int kFloatType = 1, kInt64Type = 7;  // TensorProto.DataType
constexpr int kAttrFloat = 1, kAttrInt = 2, kAttrString = 3, kAttrInts = 7;  // AttributeProto.AttributeType

struct Attribute {
  Message encoded;
  static Attribute ints(const std::string& name, const std::vector<std::int64_t>& values) {
    Attribute a;
    a.encoded.bytes(1, name).varint(20, kAttrInts);
    for (auto v : values) a.encoded.varint(8, static_cast<std::uint64_t>(v));
    return a;
  }
  static Attribute integer(const std::string& name, std::int64_t value) {
    Attribute a;
    a.encoded.bytes(1, name).varint(3, static_cast<std::uint64_t>(value)).varint(20, kAttrInt);
    return a;
  }
  static Attribute real(const std::string& name, float value) {
    Attribute a;
    a.encoded.bytes(1, name).fixed32(2, value).varint(20, kAttrFloat);
    return a;
  }
  static Attribute text(const std::string& name, const std::string& value) {
    Attribute a;
    a.encoded.bytes(1, name).bytes(4, value).varint(20, kAttrString);
    return a;
  }
};

// Builds the graph; each helper adds a node and returns its output's name.
class GraphBuilder {
 public:
  GraphBuilder(const ModelFile& model, const std::string& path) : model_(model), path_(path) {}

  // A weight from the model file (checked against the spec by check_weights) as an initializer.
  std::string weight(const std::string& name) {
    const Tensor& t = tensor(name);
    return initializer(name, t.shape, std::vector<float>(t.f32(), t.f32() + t.numel()));
  }
  const Tensor& tensor(const std::string& name) const { return model_.tensors.at(name); }
  std::string initializer(const std::string& name, const std::vector<std::int64_t>& shape, const std::vector<float>& values) {
    Message t;
    for (auto d : shape) t.varint(1, static_cast<std::uint64_t>(d));
    t.varint(2, kFloatType).bytes(8, name).bytes(9, std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
    graph_.message(5, t);
    return name;
  }
  std::string int64s(const std::string& name, const std::vector<std::int64_t>& values) {
    Message t;
    t.varint(1, values.size()).varint(2, kInt64Type).bytes(8, name);
    t.bytes(9, std::string(reinterpret_cast<const char*>(values.data()), values.size() * 8));
    graph_.message(5, t);
    return name;
  }

  std::string node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<Attribute>& attributes = {},
                   std::string output = "") {
    if (output.empty()) output = op + "_" + std::to_string(count_);
    Message n;
    for (const auto& in : inputs) n.bytes(1, in);
    n.bytes(2, output).bytes(3, op + "_" + std::to_string(count_++)).bytes(4, op);
    for (const auto& a : attributes) n.message(5, a.encoded);
    graph_.message(1, n);
    return output;
  }

  // A convolution with its batch norm, max pool and ReLU as the spec has them.
  std::string convolution(const std::string& x, const ConvolutionSpec& c) {
    std::vector<std::string> inputs{x, weight(c.name + ".weight")};
    if (c.bias) inputs.push_back(weight(c.name + ".bias"));
    const std::int64_t p = c.padding();
    std::string y = node("Conv", inputs, {Attribute::ints("kernel_shape", {c.kernel, c.kernel}), Attribute::ints("pads", {p, p, p, p}),
                                          Attribute::ints("strides", {c.stride_height, c.stride_width})});
    if (!c.norm.empty()) y = batch_norm(y, c.norm);
    if (c.pool) y = max_pool(y);
    return c.relu ? node("Relu", {y}) : y;
  }
  std::string batch_norm(const std::string& x, const std::string& name) {
    return node("BatchNormalization",
                {x, weight(name + ".weight"), weight(name + ".bias"), weight(name + ".running_mean"),
                 weight(name + ".running_var")},
                {Attribute::real("epsilon", kBatchNormEpsilon)});
  }
  std::string max_pool(const std::string& x) {
    return node("MaxPool", {x}, {Attribute::ints("kernel_shape", {2, 2}), Attribute::ints("strides", {2, 2})});
  }
  std::string transpose(const std::string& x, const std::vector<std::int64_t>& perm) {
    return node("Transpose", {x}, {Attribute::ints("perm", perm)});
  }
  // x . W^T + b for a LibTorch Linear (weight out x in), then its ReLU.
  std::string linear(const std::string& x, const DenseSpec& dense, std::string output = "") {
    const float* w = tensor(dense.name + ".weight").f32();
    const int in = dense.in, out = dense.out;
    std::vector<float> transposed(static_cast<std::size_t>(in) * out);
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) transposed[static_cast<std::size_t>(i) * out + o] = w[static_cast<std::size_t>(o) * in + i];
    const std::string w_t = initializer(dense.name + ".weight_t", {in, out}, transposed);
    const std::string y = node("Add", {node("MatMul", {x, w_t}), weight(dense.name + ".bias")}, {}, dense.relu ? "" : std::move(output));
    return dense.relu ? node("Relu", {y}, {}, std::move(output)) : y;
  }

  // A LibTorch bidirectional LSTM/GRU layer on sequence-major input [T, N, input]; returns
  // [T, N, 2 hidden]. ONNX's gate orders: LSTM i,o,f,c (LibTorch i,f,g,o); GRU z,r,h (r,z,n).
  // `batch` > 0: a fixed batch size, for which GRUs get an explicit zero initial state
  // (OpenCV's importer wants one).
  std::string birnn(const std::string& x, const BiRnnSpec& rnn, int batch) {
    const int gates = rnn.gates(), hidden = rnn.hidden, input = rnn.input;
    const std::vector<int> order = rnn.gru ? std::vector<int>{1, 0, 2} : std::vector<int>{0, 3, 1, 2};
    std::vector<float> w, r, b;
    for (const char* suffix : {"_l0", "_l0_reverse"}) {
      const auto get = [&](const std::string& part) { return tensor(rnn.name + part + suffix).f32(); };
      const float* w_ih = get(".weight_ih");
      const float* w_hh = get(".weight_hh");
      const float* b_ih = get(".bias_ih");
      const float* b_hh = get(".bias_hh");
      for (int g : order) w.insert(w.end(), w_ih + g * hidden * input, w_ih + (g + 1) * hidden * input);
      for (int g : order) r.insert(r.end(), w_hh + g * hidden * hidden, w_hh + (g + 1) * hidden * hidden);
      for (int g : order) b.insert(b.end(), b_ih + g * hidden, b_ih + (g + 1) * hidden);
      for (int g : order) b.insert(b.end(), b_hh + g * hidden, b_hh + (g + 1) * hidden);
    }
    std::vector<Attribute> attributes{Attribute::text("direction", "bidirectional"), Attribute::integer("hidden_size", hidden)};
    if (rnn.gru) attributes.push_back(Attribute::integer("linear_before_reset", 1));
    std::vector<std::string> inputs{x, initializer(rnn.name + ".W", {2, gates * hidden, input}, w),
                                    initializer(rnn.name + ".R", {2, gates * hidden, hidden}, r),
                                    initializer(rnn.name + ".B", {2, 2 * gates * hidden}, b)};
    if (rnn.gru && batch > 0) {
      inputs.push_back("");  // sequence_lens: every sequence is whole
      inputs.push_back(initializer(rnn.name + ".initial_h", {2, batch, hidden}, std::vector<float>(2ull * batch * hidden, 0.0f)));
    }
    const std::string y = node(rnn.gru ? "GRU" : "LSTM", inputs, attributes);
    // Y: [T, 2, N, hidden] -> [T, N, 2, hidden] -> [T, N, 2 hidden].
    return node("Reshape", {transpose(y, {0, 2, 1, 3}), keep_two_dims()});
  }
  // Reshape target [0, 0, -1]: keep the first two dimensions, flatten the rest.
  std::string keep_two_dims() {
    if (!keep_two_) keep_two_ = true, int64s("keep_two_dims", {0, 0, -1});
    return "keep_two_dims";
  }

  // The graph's one input and one output: names, dimensions (numbers fixed, others named) and
  // element types.
  struct Port {
    std::string name;
    std::vector<std::string> dims;
    int type = kFloatType;
  };
  std::string encode(const Port& input, const Port& output, const std::vector<Message>& metadata) {
    graph_.bytes(2, "captcha-ocr");
    graph_.message(11, value_info(input));
    graph_.message(12, value_info(output));
    Message model;
    model.varint(1, 8);  // IR version 8
    model.bytes(2, "captcha-ocr").bytes(3, "0.1.0");
    model.message(8, Message().bytes(1, "").varint(2, 13));  // opset 13 of the default domain
    model.message(7, graph_);
    for (const auto& m : metadata) model.message(14, m);
    return model.encoded();
  }

 private:
  // A float tensor's type; dimensions given as numbers are fixed, others are named.
  static Message value_info(const Port& port) {
    Message shape;
    for (const auto& d : port.dims) {
      const bool fixed = !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
      shape.message(1, fixed ? Message().varint(1, std::stoull(d)) : Message().bytes(2, d));
    }
    Message tensor_type;
    tensor_type.varint(1, port.type).message(2, shape);
    return Message().bytes(1, port.name).message(2, Message().message(1, tensor_type));
  }

  const ModelFile& model_;
  const std::string& path_;
  Message graph_;
  int count_ = 0;
  bool keep_two_ = false;
};

}  // namespace

namespace {

// The network from `input` (batch x 1 x height x width, normalised as the model's preprocessing
// says) to its logits (batch x time steps x classes), named `output`.
void add_network(GraphBuilder& g, const NetworkSpec& spec, std::string x, int batch, const std::string& output) {
  for (const auto& conv : spec.convolutions) x = g.convolution(x, conv);
  for (const auto& block : spec.blocks) {
    const std::string y = g.convolution(g.convolution(x, block.conv1), block.conv2);
    const std::string shortcut = block.shortcut ? g.convolution(x, *block.shortcut) : x;
    x = g.node("Relu", {g.node("Add", {y, shortcut})});
  }
  if (spec.step_features == StepFeatures::kColumns) {
    // N x C x H x W -> N x W x (C H).
    x = g.node("Reshape", {g.transpose(x, {0, 3, 1, 2}), g.keep_two_dims()});
  } else {
    // Mean over the height: N x C x W -> N x W x C.
    x = g.transpose(g.node("ReduceMean", {x}, {Attribute::ints("axes", {2}), Attribute::integer("keepdims", 0)}), {0, 2, 1});
  }
  x = g.linear(x, spec.features);
  x = g.transpose(x, {1, 0, 2});  // sequence-major for the RNN operators
  for (const auto& rnn : spec.rnns) x = g.birnn(x, rnn, batch);
  x = g.linear(x, spec.classifier);
  g.node("Transpose", {x}, {Attribute::ints("perm", {1, 0, 2})}, output);  // batch-major again
}

NetworkSpec checked_spec(const ModelFile& model, const std::string& model_path) {
  NetworkSpec spec = network_spec(model.config, model.preprocess.height, model.charset.num_classes());
  check_weights(spec, model.tensors, model_path);
  return spec;
}

}  // namespace

void export_onnx(const ModelFile& model, const std::string& model_path, const std::string& path, int batch) {
  const int height = model.preprocess.height, width = model.preprocess.width;
  const NetworkSpec spec = checked_spec(model, model_path);
  GraphBuilder g(model, model_path);
  add_network(g, spec, "image", batch, "logits");

  std::vector<Message> metadata;
  const auto meta = [&](const std::string& key, const std::string& value) { metadata.push_back(Message().bytes(1, key).bytes(2, value)); };
  meta("format", "captcha-ocr onnx export");
  meta("charset", model.charset.symbols_utf8());
  meta("blank_index", std::to_string(Charset::kBlank));
  meta("fold_case", model.fold_case ? "true" : "false");
  meta("label_lengths", nlohmann::json{model.label_lengths.min, model.label_lengths.max}.dump());
  meta("preprocess", nlohmann::json(model.preprocess).dump());
  meta("reading_views", std::to_string(model.reading_views));  // see reading_view()
  meta("architecture", nlohmann::json(model.config).dump());
  const std::string batch_dim = batch > 0 ? std::to_string(batch) : "batch";
  write_file_atomically(path, g.encode({"image", {batch_dim, "1", std::to_string(height), std::to_string(width)}},
                                       {"logits", {batch_dim, "time_steps", std::to_string(spec.classes)}}, metadata));
}

void export_ddddocr(const ModelFile& model, const std::string& model_path, const std::string& onnx_path,
                    const std::string& charsets_path, int width) {
  if (width < 0 || width > 4096) throw ConfigError("ddddocr export: the input width must be 1 to 4096 (0: any)");
  const PreprocessOptions& p = model.preprocess;
  const NetworkSpec spec = checked_spec(model, model_path);
  GraphBuilder g(model, model_path);
  // ddddocr's (v / 255 - 0.456) / 0.224 as the model's (v / 255 - mean) / std: one multiply-add.
  const float scale = kDdddocrStd / p.std, shift = (kDdddocrMean - p.mean) / p.std;
  std::string x = g.node("Add", {g.node("Mul", {"input1", g.initializer("ddddocr_scale", {}, {scale})}),
                                 g.initializer("ddddocr_shift", {}, {shift})});
  // Stretched to the model's input, as the model's own preprocessing stretches.
  x = g.node("Resize", {x, "", "", g.int64s("model_input_size", {1, 1, p.height, p.width})},
             {Attribute::text("mode", "linear"), Attribute::text("coordinate_transformation_mode", "half_pixel")});
  add_network(g, spec, x, 1, "logits");
  g.node("ArgMax", {"logits"}, {Attribute::integer("axis", 2), Attribute::integer("keepdims", 0)}, "output");
  write_file_atomically(onnx_path, g.encode({"input1", {"1", "1", std::to_string(kDdddocrHeight),
                                                        width > 0 ? std::to_string(width) : "width"}},
                                            {"output", {"1", "time_steps"}, kInt64Type}, {}));

  nlohmann::json charset = nlohmann::json::array({""});  // class 0: the CTC blank
  for (const char32_t symbol : model.charset.symbols()) charset.push_back(u32_to_utf8(symbol));
  const nlohmann::json charsets = {
      {"charset", charset}, {"word", false}, {"image", {width > 0 ? width : -1, kDdddocrHeight}}, {"channel", 1}};
  write_file_atomically(charsets_path, charsets.dump());
}

}  // namespace captcha
