// The captcha-ocr binary: every subcommand, bad arguments, missing and corrupt files, exit codes.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "captcha/model_file.h"
#include "captcha/recogniser.h"
#include "captcha/trainer.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

struct Result {
  int code;
  std::string output;  // stdout, then stderr when `merge`
};

Result run_binary(const std::string& binary, const std::string& args, bool merge = true) {
  const std::string command = binary + " " + args + (merge ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

Result run(const std::string& args, bool merge = true) { return run_binary(CAPTCHA_OCR_BIN, args, merge); }
// The reading-only build (no LibTorch).
Result run_reader(const std::string& args, bool merge = true) { return run_binary(CAPTCHA_OCR_READ_BIN, args, merge); }

// One small model trained once for the whole suite.
class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("cli");
    testing::write_dataset(dir_->path() + "/data", 24, "0123456789", 3, 21);
    const Result r = run("train --train " + data() + " --val " + data() + " --out " + run_dir() +
                         " --epochs 2 --width 96 --height 32 --rnn-hidden 16 --threads 1");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string data() { return dir_->path() + "/data"; }
  static std::string run_dir() { return dir_->path() + "/run"; }
  static std::string model() { return run_dir() + "/best.safetensors"; }
  static std::string path(const std::string& name) { return dir_->path() + "/" + name; }
  static TempDir* dir_;
};
TempDir* Cli::dir_ = nullptr;

TEST_F(Cli, HelpListsSubcommandsAndExitCodes) {
  const Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* word : {"train", "eval", "predict", "Exit codes"}) EXPECT_NE(r.output.find(word), std::string::npos) << word;
  EXPECT_EQ(run("train --help").code, 0);
}

TEST_F(Cli, BadUsageExitsWithTwo) {
  EXPECT_EQ(run("").code, 2);
  EXPECT_EQ(run("frobnicate").code, 2);
  EXPECT_EQ(run("train --epochs many").code, 2);
  EXPECT_EQ(run("train --out " + path("x")).code, 2);  // no --train
  const Result optimizer = run("train --train " + data() + " --out " + path("x") + " --optimizer lbfgs");
  EXPECT_EQ(optimizer.code, 2);
  EXPECT_NE(optimizer.output.find("lbfgs not in {adam,sgd}"), std::string::npos) << optimizer.output;  // the allowed values
  EXPECT_EQ(run("train --train " + data() + " --out " + path("x") + " --arch transformer").code, 2);
  EXPECT_EQ(run("eval --model " + model()).code, 2);   // no --data
  EXPECT_EQ(run("predict --model " + model()).code, 2);  // no paths
}

TEST_F(Cli, TrainWritesTheRunFolderAndTheSettingsTable) {
  for (const char* name : {"best.safetensors", "final.safetensors", "last.safetensors", "metrics.csv"})
    EXPECT_TRUE(fs::exists(run_dir() + "/" + name)) << name;
  const Result r = run("train --train " + data() + " --out " + path("split") +
                       " --val-fraction 0.25 --epochs 1 --width 96 --height 32 --rnn-hidden 16 --seed 3");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("held out"), std::string::npos);
  EXPECT_NE(r.output.find("epoch   1/1"), std::string::npos);
  EXPECT_NE(r.output.find("img/s"), std::string::npos);
}

TEST_F(Cli, TrainSizesTheSmallNetworkAndBothBuildsReadIt) {
  // Two convolutions, or more (the others after the second pooling).
  for (const std::string channels : {"8,16", "8,16,12"}) {
    const std::string out = path("sized-" + channels);
    Result r = run("train --train " + data() + " --val " + data() + " --out " + out + " --epochs 1 --width 96 --height 32" +
                   " --conv-channels " + channels + " --features 24 --rnn-hidden 12 --threads 1");
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("small (conv " + channels + "), 24 features + lstm (12)"), std::string::npos) << r.output;
    const std::string model = out + "/best.safetensors";
    const Result full = run("predict --model " + model + " --json " + data(), false);
    const Result reader = run_reader("predict --model " + model + " --json " + data(), false);
    ASSERT_EQ(full.code, 0) << full.output;
    EXPECT_EQ(reader.output, full.output) << channels;
  }
  // One or seven channel counts, or channels for the resnet (whose widths are fixed), is bad usage.
  for (const char* bad : {" --conv-channels 8", " --conv-channels 8,16,16,16,16,16,16", " --arch resnet --conv-channels 8,16",
                          " --features 0"}) {
    const Result r = run("train --train " + data() + " --out " + path("bad-size") + bad);
    EXPECT_EQ(r.code, 2) << bad << ": " << r.output;
    EXPECT_FALSE(fs::exists(path("bad-size"))) << bad;
  }
}

TEST_F(Cli, TrainUnderATimeLimitRunsTheEpochsThatFitUnlessEpochsIsGiven) {
  const std::string train = "train --train " + data() + " --val " + data() + " --width 96 --height 32 --rnn-hidden 16" +
                            " --threads 1 --time-limit 0.001 --out ";
  Result r = run(train + path("limited"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("the epochs that fit in 0:00"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("time limit"), std::string::npos) << r.output;
  r = run(train + path("limited-capped") + " --epochs 7");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("max 7 epochs or 0:00"), std::string::npos) << r.output;
}

TEST_F(Cli, TrainPicksOpenBlasAvx2KernelsUnlessTheUserChoseOthers) {
  const std::string train = "train --train " + data() + " --val " + data() + " --epochs 1 --width 96 --height 32" +
                            " --rnn-hidden 16 --threads 1 --out ";
  Result r = run_binary("env -u OPENBLAS_CORETYPE " CAPTCHA_OCR_BIN, train + path("blas-default"));
  ASSERT_EQ(r.code, 0) << r.output;
  if (r.output.find("not OpenBLAS") != std::string::npos) GTEST_SKIP() << "the system BLAS is not OpenBLAS";
  ASSERT_NE(r.output.find("OpenBLAS "), std::string::npos) << r.output;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    EXPECT_EQ(r.output.find("Prescott kernels"), std::string::npos) << r.output;  // never the SSE3 fallback
  r = run_binary("env OPENBLAS_CORETYPE=Prescott " CAPTCHA_OCR_BIN, train + path("blas-chosen"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("OpenBLAS Prescott kernels (OPENBLAS_CORETYPE=Prescott)"), std::string::npos) << r.output;
}

// The tool only parses flags into TrainOptions: a library caller who sets the same options gets
// the same model, the sizes the trainer fits to the data included (small and resnet).
TEST_F(Cli, LibraryCallerTrainsTheModelTheToolTrains) {
  for (const std::string arch : {"small", "resnet"}) {
    const std::string cli_run = path("same-cli-" + arch), library_run = path("same-library-" + arch);
    const Result r = run("train --train " + data() + " --val " + data() + " --out " + cli_run + " --arch " + arch +
                         " --epochs 1 --threads 1 --quiet");
    ASSERT_EQ(r.code, 0) << r.output;
    TrainOptions o;
    o.train_dirs = {data()};
    o.val_dir = data();
    o.out_dir = library_run;
    o.model.arch = parse_enum(arch, kArchitectureNames, "architecture");
    o.epochs = 1;
    o.threads = 1;
    o.quiet = true;
    std::ostringstream log;
    train(o, log);
    const ModelFile by_tool = load_model(cli_run + "/final.safetensors");
    const ModelFile by_library = load_model(library_run + "/final.safetensors");
    EXPECT_EQ(nlohmann::json(by_library.config), nlohmann::json(by_tool.config)) << arch;
    EXPECT_EQ(nlohmann::json(by_library.preprocess), nlohmann::json(by_tool.preprocess)) << arch;
    ASSERT_EQ(by_library.tensors.size(), by_tool.tensors.size()) << arch;
    for (const auto& [name, tensor] : by_tool.tensors)
      EXPECT_TRUE(by_library.tensors.at(name).bytes == tensor.bytes) << arch << ": " << name << " differs";
  }
}

TEST_F(Cli, TrainOnEmptyOrMissingDataFailsClearly) {
  fs::create_directories(path("empty"));
  Result r = run("train --train " + path("empty") + " --out " + path("x"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find(path("empty")), std::string::npos);
  EXPECT_NE(r.output.find("no images"), std::string::npos);
  r = run("train --train " + path("nope") + " --out " + path("x"));
  EXPECT_EQ(r.code, 2);
}

TEST_F(Cli, EvalPrintsFiguresAndJson) {
  Result r = run("eval --model " + model() + " --data " + data());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("exact match"), std::string::npos);
  EXPECT_NE(r.output.find("CER"), std::string::npos);
  r = run("eval --model " + model() + " --data " + data() + " --json --errors " + path("errors.tsv"), false);
  ASSERT_EQ(r.code, 0);
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("count"), 24);
  for (const char* key : {"exact_match", "exact_match_case_insensitive", "cer"}) {
    EXPECT_GE(j.at(key).get<double>(), 0.0) << key;
    EXPECT_LE(j.at(key).get<double>(), j.at(key) == j.at("cer") ? 10.0 : 1.0) << key;
  }
  const std::string errors = testing::read_file(path("errors.tsv"));
  EXPECT_EQ(errors.rfind("path\ttruth\treading", 0), 0u);
}

// Several models read as an ensemble and several views of each image; a model of another task
// cannot join (one clear line, exit 1); a view count out of range is bad usage.
TEST_F(Cli, EvalAndPredictReadEnsemblesAndViews) {
  Result r = run("eval --model " + model() + " --data " + data());
  EXPECT_NE(r.output.find("(the model's choice)"), std::string::npos) << r.output;
  const auto figures = [&](const std::string& models, const std::string& views) {
    const Result out = run("eval " + models + " --data " + data() + " --json --views " + views, false);
    EXPECT_EQ(out.code, 0) << out.output;
    return nlohmann::json::parse(out.output);
  };
  const auto alone = figures("--model " + model(), "3");
  const auto twice = figures("--model " + model() + " --model " + model(), "3");
  EXPECT_EQ(alone.at("views"), 3);
  EXPECT_EQ(alone.at("beam"), kDefaultBeamWidth);
  EXPECT_EQ(twice.at("models").size(), 2u);
  EXPECT_EQ(twice.at("exact_match"), alone.at("exact_match"));  // a model averaged with itself
  EXPECT_EQ(twice.at("cer"), alone.at("cer"));
  r = run("eval --model " + model() + " --model " + model() + " --views 7 --data " + data());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(model() + " + " + model() + ", 7 views, beam 10"), std::string::npos) << r.output;

  ModelFile letters = load_model(model());
  letters.charset = Charset("abcdefghij");  // as many symbols, another task
  save_model(path("letters.safetensors"), letters);
  r = run("predict --model " + model() + " --model " + path("letters.safetensors") + " " + data());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find(path("letters.safetensors") + ": cannot be read together with " + model()), std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_EQ(run("predict --model " + model() + " --views 8 " + data()).code, 2);
  EXPECT_EQ(run("predict --model " + model() + " --views 0 " + data()).code, 2);
}

TEST_F(Cli, PredictFilesFoldersStdinAndJson) {
  const std::string image = data() + "/" + fs::directory_iterator(data())->path().filename().string();
  Result r = run("predict --model " + model() + " " + image, false);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\t'), 2);
  EXPECT_EQ(r.output.rfind(image, 0), 0u);
  r = run("predict --model " + model() + " " + data() + " --limit 5", false);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 5);
  r = run("predict --model " + model() + " - < " + image, false);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.output.rfind("-\t", 0), 0u);
  r = run("predict --model " + model() + " --json --beam 4 --allowed 0123 " + image, false);
  ASSERT_EQ(r.code, 0);
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_TRUE(j.contains("confidence"));
  for (const auto& c : j.at("chars")) {
    EXPECT_NE(std::string("0123").find(c.at("char").get<std::string>()), std::string::npos);
    EXPECT_EQ(c.at("case_probability").get<double>(), 1.0);  // digits have no case
  }
}

TEST_F(Cli, PredictSavesDebugImagesAndHonoursPreprocessingFlags) {
  const Result r = run("predict --model " + model() + " " + data() + " --limit 2 --no-auto-crop --strong --force-invert --save-debug " + path("debug"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(std::distance(fs::directory_iterator(path("debug")), fs::directory_iterator()), 2);
}

TEST_F(Cli, CorruptImagesAreNamedAndTheRestStillRead) {
  fs::create_directories(path("mixed"));
  fs::copy(fs::directory_iterator(data())->path(), path("mixed/good.png"));
  testing::write_file(path("mixed/broken.png"), "not an image");
  testing::write_file(path("mixed/zero.png"), "");
  // 54 bytes whose header claims 26000 x 26000 pixels (4 GB decoded), twice, on two threads.
  std::string bomb = "BM";
  const auto le = [&bomb](std::uint32_t value, int count) {
    for (int i = 0; i < count; ++i) bomb += static_cast<char>(value >> (8 * i));
  };
  le(54, 4), le(0, 4), le(54, 4), le(40, 4), le(26000, 4), le(26000, 4), le(1, 2), le(24, 2);
  le(0, 4), le(0, 4), le(2835, 4), le(2835, 4), le(0, 4), le(0, 4);
  testing::write_file(path("mixed/bomb1.bmp"), bomb);
  testing::write_file(path("mixed/bomb2.bmp"), bomb);
  const Result r = run("predict --threads 2 --model " + model() + " " + path("mixed"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("bomb2.bmp: image is 26000x26000 pixels, over the limit"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("broken.png: cannot decode"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("zero.png: empty file"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("good.png\t"), std::string::npos);
  EXPECT_EQ(run("predict --model " + model() + " " + path("missing.png")).code, 1);
}

// The image limits are the user's to set: under them an ordinary image is refused by name,
// before decoding; the other images still read.
TEST_F(Cli, ImageLimitsAreSetByFlags) {
  const std::string image = fs::directory_iterator(data())->path().string();
  Result r = run("predict --model " + model() + " --max-image-pixels 100 " + image);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find(image + ": image is "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("over the limit of 100 pixels"), std::string::npos) << r.output;
  r = run("eval --model " + model() + " --data " + data() + " --max-image-bytes 10");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("over the limit of 10 bytes"), std::string::npos) << r.output;
  EXPECT_EQ(run("predict --model " + model() + " --max-image-pixels 0 " + image).code, 2);
}

TEST_F(Cli, BadModelFilesFailWithOneClearLine) {
  const std::string bytes = testing::read_file(model());
  testing::write_file(path("truncated.safetensors"), bytes.substr(0, bytes.size() / 2));
  testing::write_file(path("foreign.safetensors"), "PK\x03\x04 a zip file, not a model");
  for (const char* name : {"truncated.safetensors", "foreign.safetensors"}) {
    const Result r = run("predict --model " + path(name) + " " + data());
    EXPECT_EQ(r.code, 1) << name;
    EXPECT_NE(r.output.find(path(name)), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(run("eval --model " + path(name) + " --data " + data()).code, 1);
  }
  EXPECT_EQ(run("predict --model " + path("nope.safetensors") + " " + data()).code, 2);
}

TEST_F(Cli, ModelFilesPassAnIndependentSafetensorsCheck) {
  if (std::system("python3 --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3 to run the checker";
  const std::string checker = std::string(CAPTCHA_SOURCE_DIR) + "/tests/tools/check_safetensors.py";
  for (const char* name : {"best.safetensors", "last.safetensors"}) {
    const std::string command = "python3 " + checker + " " + run_dir() + "/" + name + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    char buffer[512] = {0};
    const std::size_t n = fread(buffer, 1, sizeof buffer - 1, pipe);
    EXPECT_EQ(pclose(pipe), 0) << std::string(buffer, n);
    EXPECT_EQ(std::string(buffer, n).rfind("ok:", 0), 0u) << std::string(buffer, n);
  }
}

TEST_F(Cli, CtrlCSavesLastAndExitsWith130) {
  const std::string out = path("sigint");
  // Background commands of a non-interactive shell start with SIGINT ignored; the tool installs
  // its own handler, so the signal still reaches it.
  const std::string script =
      "sh -c '" + std::string(CAPTCHA_OCR_BIN) + " train --train " + data() + " --val " + data() + " --out " + out +
      " --epochs 500 --width 96 --height 32 --rnn-hidden 16 --threads 1 > " + out + ".log 2>&1 & pid=$!; "
      "for i in $(seq 600); do [ -f " + out + "/metrics.csv ] && break; sleep 0.1; done; "
      "kill -INT $pid; wait $pid; echo rc=$?'";
  FILE* pipe = popen(script.c_str(), "r");
  char buffer[256] = {0};
  const std::size_t n = fread(buffer, 1, sizeof buffer - 1, pipe);
  pclose(pipe);
  EXPECT_EQ(std::string(buffer, n), "rc=130\n") << testing::read_file(out + ".log");
  EXPECT_TRUE(fs::exists(out + "/last.safetensors"));
  EXPECT_FALSE(fs::exists(out + "/final.safetensors"));
  EXPECT_NE(testing::read_file(out + ".log").find("--resume"), std::string::npos);
}

TEST_F(Cli, ResumeAndInit) {
  EXPECT_EQ(run("train --resume " + run_dir() + " --epochs 3 --checkpoint-every -1").code, 2);
  Result r = run("train --resume " + run_dir() + " --epochs 3 --checkpoint-every 5");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming after epoch 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("epoch   3/3"), std::string::npos) << r.output;
  r = run("train --train " + data() + " --val " + data() + " --out " + path("tuned") + " --init " + model() + " --epochs 1");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("96x32"), std::string::npos);  // the init model's input size
  EXPECT_EQ(run("train --resume " + path("empty-run")).code, 2);
}

TEST_F(Cli, InitWithSizesGrowsTheStartingModel) {
  // The suite's model: conv 32,64, 64 features, lstm (16).
  const std::string start = "train --train " + data() + " --val " + data() + " --init " + model() + " --epochs 1 --threads 1";
  Result r = run(start + " --out " + path("grown") + " --conv-channels 32,64,64 --features 80 --rnn-hidden 24");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find(model() + ", grown to the model below"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("small (conv 32,64,64), 80 features + lstm (24)"), std::string::npos) << r.output;
  r = run(start + " --out " + path("shrunk") + " --conv-channels 16,64");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("has convolutions 32,64; growing keeps each as wide or wider"), std::string::npos) << r.output;
}

TEST_F(Cli, GenerateDrawsAFolderThatTrainAndEvalRead) {
  Result r = run("generate --out " + path("gen") + " --count 30 --style clean --charset digits --length 3 --size 96x32 --seed 5");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("images/s"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(path("gen/labels.tsv")));
  // The model trained on hand-drawn digits reads the folder without complaint.
  r = run("eval --model " + model() + " --data " + path("gen") + " --json", false);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.output).at("count"), 30);
}

TEST_F(Cli, GenerateRefusesBadOptions) {
  for (const std::string args : {"--count 0", "--length 0", "--length 6-4", "--length x", "--size 40x10",
                                 "--size big", "--style sparkles", "--charset ''", "--format gif"}) {
    const Result r = run("generate --out " + path("bad-gen") + " " + args);
    EXPECT_EQ(r.code, 2) << args << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << args << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(path("bad-gen")));
}

TEST_F(Cli, BenchPrintsTimingsAndJson) {
  Result r = run("bench --model " + model() + " --batch 2 --runs 3 --threads 1 --json", false);
  ASSERT_EQ(r.code, 0) << r.output;
  const auto json = nlohmann::json::parse(r.output);
  EXPECT_GT(json.at("median_ms").get<double>(), 0.0);
  EXPECT_GT(json.at("images_per_second").get<double>(), 0.0);
  EXPECT_EQ(json.at("batch"), 2);
  r = run("bench --model " + model() + " --runs 2");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("images/s"), std::string::npos) << r.output;
  EXPECT_EQ(run("bench --model " + model() + " --batch 0").code, 2);
  r = run("bench --model " + model() + " --batch 2 --runs 2 --int8 --json", false);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(nlohmann::json::parse(r.output).at("kernels").get<std::string>().find("int8 on "), std::string::npos) << r.output;
  r = run("bench --model " + path("missing.safetensors"));
  EXPECT_EQ(r.code, 2) << r.output;
}

TEST_F(Cli, ExportWritesOnnxAndRefusesBadModels) {
  Result r = run("export --model " + model() + " --format onnx --out " + path("m.onnx"));
  ASSERT_EQ(r.code, 0) << r.output;
  const std::string onnx = testing::read_file(path("m.onnx"));
  EXPECT_GT(onnx.size(), 10000u);
  for (const char* part : {"LSTM", "image", "logits", "charset", "0123456789"})
    EXPECT_NE(onnx.find(part), std::string::npos) << part;
  EXPECT_EQ(run("export --model " + model() + " --format tflite --out " + path("m.tflite")).code, 2);
  testing::write_file(path("foreign.safetensors"), "not a model");
  r = run("export --model " + path("foreign.safetensors") + " --out " + path("f.onnx"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("foreign.safetensors"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(path("f.onnx")));
}

// --int8 reads the bundled examples as the float path does (predict and eval), also through the
// reading-only tool.
TEST_F(Cli, Int8ReadsTheExamplesAsFloatDoes) {
  const std::string examples = std::string(CAPTCHA_SOURCE_DIR) + "/examples";
  const std::string bundled = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";
  const auto texts = [](const Result& r) {
    std::vector<std::string> out;  // one JSON object a line
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    return out;
  };
  const Result float_path = run_reader("predict --model " + bundled + " --json " + examples, false);
  const Result int8 = run_reader("predict --model " + bundled + " --int8 --json " + examples, false);
  ASSERT_EQ(int8.code, 0) << int8.output;
  EXPECT_EQ(texts(int8), texts(float_path));
  const Result eval = run("eval --model " + bundled + " --data " + examples + " --int8 --json", false);
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_EQ(nlohmann::json::parse(eval.output).at("exact_match").get<double>(), 1.0) << eval.output;
}

// export --format safetensors: the network's weights alone, or with --int8 in 8 bits, checked
// first on a labelled folder with --calibrate; the file reads like the float one.
TEST_F(Cli, ExportWritesInt8ModelFilesCheckedOnAFolder) {
  const std::string examples = std::string(CAPTCHA_SOURCE_DIR) + "/examples";
  const std::string bundled = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";
  Result r = run_reader("export --model " + bundled + " --format safetensors --int8 --calibrate " + examples +
                        " --out " + path("g8.safetensors"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("exact match 100.00% float, 100.00% int8"), std::string::npos) << r.output;
  EXPECT_LT(fs::file_size(path("g8.safetensors")), fs::file_size(bundled) * 2 / 5);
  const Result float_read = run_reader("predict --model " + bundled + " --int8 " + examples, false);
  const Result int8_read = run_reader("predict --model " + path("g8.safetensors") + " " + examples, false);
  ASSERT_EQ(int8_read.code, 0) << int8_read.output;
  EXPECT_EQ(int8_read.output, float_read.output);
  r = run_reader("export --model " + bundled + " --format onnx --int8 --out " + path("g8.onnx"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("--format safetensors"), std::string::npos) << r.output;
  r = run_reader("export --model " + bundled + " --format safetensors --calibrate " + examples + " --out " + path("c.safetensors"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_FALSE(fs::exists(path("c.safetensors")));
}

TEST_F(Cli, ReadingOnlyBuildReadsLikeTheFullOneAndLinksNoLibTorch) {
  const Result full = run("predict --model " + model() + " --json " + data(), false);
  const Result reader = run_reader("predict --model " + model() + " --json " + data(), false);
  ASSERT_EQ(reader.code, 0) << reader.output;
  EXPECT_EQ(reader.output, full.output);
  const Result train = run_reader("train --train " + data() + " --out " + path("no-train"));
  EXPECT_EQ(train.code, 2) << train.output;
  EXPECT_NE(train.output.find("reading-only build"), std::string::npos) << train.output;
  EXPECT_FALSE(fs::exists(path("no-train")));
  const Result libraries = run_binary("ldd", CAPTCHA_OCR_READ_BIN);
  ASSERT_EQ(libraries.code, 0) << libraries.output;
  for (const char* torch : {"libtorch", "libc10"}) EXPECT_EQ(libraries.output.find(torch), std::string::npos) << libraries.output;
  EXPECT_EQ(libraries.output.find("libgdal"), std::string::npos) << "OpenCV's imgcodecs came back";
  // Its serve runs captcha-ocr-serve: the HTTP and TLS libraries load with the service only.
  for (const char* http : {"libcpp-httplib", "libssl", "libcrypto"})
    EXPECT_EQ(libraries.output.find(http), std::string::npos) << http << " in the reading tool:\n" << libraries.output;
  // Nor OpenCV and FreeType: generate and eval --grid run captcha-ocr-serve, which draws.
  for (const char* drawing : {"libopencv", "libfreetype"})
    EXPECT_EQ(libraries.output.find(drawing), std::string::npos) << drawing << " in the reading tool:\n" << libraries.output;
}

// The reading tool's commands that draw work as the full tool's do, run by captcha-ocr-serve.
TEST_F(Cli, ReadingToolGeneratesAndDrawsGridsThroughTheFullTool) {
  const std::string flags = " --count 12 --style clean --charset digits --length 3 --size 96x32 --seed 5";
  const Result generated = run_reader("generate --out " + path("read-gen") + flags);
  ASSERT_EQ(generated.code, 0) << generated.output;
  const Result same = run("generate --out " + path("full-gen") + flags);
  ASSERT_EQ(same.code, 0) << same.output;
  std::size_t images = 0;
  for (const auto& entry : fs::directory_iterator(path("read-gen"))) {
    if (entry.path().extension() != ".png") continue;
    ++images;
    EXPECT_EQ(testing::read_file(entry.path()), testing::read_file(fs::path(path("full-gen")) / entry.path().filename()))
        << entry.path();
  }
  EXPECT_EQ(images, 12u);
  const Result bad = run_reader("generate --out " + path("bad") + " --count 0");
  EXPECT_EQ(bad.code, 2) << bad.output;

  const Result eval = run_reader("eval --model " + model() + " --data " + path("read-gen") + " --grid " + path("grid.png"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("grid written to"), std::string::npos) << eval.output;
  EXPECT_GT(fs::file_size(path("grid.png")), 1000u);
}

// serve in the reading-only build: it prints the address it took (--port 0), answers, and on
// SIGTERM stops and exits 0; a model that is not there is refused at start with its name, a
// bad flag with a usage error.
TEST_F(Cli, ServeAnswersAndStopsOnSigterm) {
  const std::string log = path("serve.log");
  const std::string model_flag = "general=" + model();
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(log_fd, 0);
  const pid_t pid = ::fork();  // arguments made before: the child only redirects and execs
  if (pid == 0) {
    ::dup2(log_fd, 2);
    ::execl(CAPTCHA_OCR_READ_BIN, CAPTCHA_OCR_READ_BIN, "serve", "--model", model_flag.c_str(), "--port", "0", "--threads",
            "1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(log_fd);
  std::smatch address;
  std::string text;
  for (int i = 0; i < 300 && !std::regex_search(text, address, std::regex("on http://127\\.0\\.0\\.1:(\\d+)/")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    text = testing::read_file(log);
  }
  ASSERT_FALSE(address.empty()) << text;
  const int port = std::stoi(address[1]);
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::send(s, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(s, buffer, sizeof buffer, 0)) > 0;) answer.append(buffer, static_cast<std::size_t>(n));
  ::close(s);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_NE(answer.find("\"status\":\"ok\""), std::string::npos) << answer;
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::read_file(log);
  EXPECT_NE(testing::read_file(log).find("stopped"), std::string::npos) << testing::read_file(log);

  const Result missing = run_reader("serve --model general=" + path("none.safetensors") + " --port 0");
  EXPECT_EQ(missing.code, 1) << missing.output;
  EXPECT_NE(missing.output.find("none.safetensors"), std::string::npos) << missing.output;
  const Result zero = run_reader("serve --model general=" + model() + " --max-batch 0");
  EXPECT_EQ(zero.code, 2) << zero.output;
  EXPECT_NE(zero.output.find("--max-batch: must be positive, not 0"), std::string::npos) << zero.output;
}

}  // namespace
}  // namespace captcha
