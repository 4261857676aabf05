// safetensors (writer and strict reader) and loading weights into a module
// by name (`init`).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "sslab/host/safetensors.h"
#include "sslab/host/weights.h"
#include "test_util.h"

namespace {

using sslab_test::TempDir;
using sslab_test::user_error;

sslab::NamedTensors sample_tensors() {
  return {{"a.weight", torch::arange(12, torch::kFloat32).reshape({3, 4})},
          {"a.bias", torch::tensor({1.5, -2.0}, torch::kFloat64)},
          {"ids", torch::tensor({int64_t{7}, int64_t{-9}, int64_t{1} << 40})},
          {"mask", torch::tensor({true, false, true})},
          {"bytes", torch::tensor({0, 255, 17}, torch::kUInt8)},
          {"half", torch::ones({2, 2}, torch::kFloat16)},
          {"empty", torch::zeros({0, 5})},
          {"scalar", torch::tensor(3.25f)}};
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  return n;
}

// Replaces the JSON header (padding it to its old length when shorter).
std::string with_header(const std::string& bytes, std::string header) {
  const uint64_t n = header_length(bytes);
  std::string data = bytes.substr(8 + n);
  std::string out(8, '\0');
  const uint64_t m = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((m >> (8 * i)) & 0xff);
  return out + header + data;
}

TEST(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  TempDir dir;
  const std::string file = dir / "w.safetensors";
  sslab::save_safetensors(file, sample_tensors(), {{"format", "pt"}, {"note", "x"}});
  ASSERT_TRUE(sslab::looks_like_safetensors(file));
  sslab::SafetensorsContents back = sslab::load_safetensors(file);
  EXPECT_EQ(back.metadata.at("format"), "pt");
  EXPECT_EQ(back.metadata.at("note"), "x");
  auto want = sample_tensors();
  ASSERT_EQ(back.tensors.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(back.tensors[i].first, want[i].first);  // the writer's order is the offsets' order
    EXPECT_EQ(back.tensors[i].second.scalar_type(), want[i].second.scalar_type()) << want[i].first;
    EXPECT_EQ(back.tensors[i].second.sizes(), want[i].second.sizes()) << want[i].first;
    EXPECT_TRUE(torch::equal(back.tensors[i].second, want[i].second)) << want[i].first;
  }
  // The header is padded to a multiple of 8 and starts with '{'.
  std::string bytes = sslab::safetensors_bytes(sample_tensors());
  EXPECT_EQ(header_length(bytes) % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
}

TEST(Safetensors, EveryCutIsAClearErrorNamingTheFile) {
  const std::string bytes = sslab::safetensors_bytes(sample_tensors());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string msg = user_error([&] { sslab::parse_safetensors(bytes.substr(0, cut), "cut.safetensors"); });
    EXPECT_NE(msg.find("cut.safetensors: not a valid safetensors file"), std::string::npos) << cut << ": " << msg;
  }
}

TEST(Safetensors, LyingHeadersAreRefused) {
  const std::string good = sslab::safetensors_bytes({{"w", torch::ones({2, 3})}, {"b", torch::ones({3})}});
  auto refused = [&](const std::string& bytes, const std::string& needle) {
    std::string msg = user_error([&] { sslab::parse_safetensors(bytes, "f.safetensors"); });
    EXPECT_NE(msg.find(needle), std::string::npos) << "wanted '" << needle << "' in: " << msg;
  };
  // A header length beyond the file, and beyond the 100 MB cap.
  std::string huge = good;
  huge[5] = 0x10;
  refused(huge, "is above the format's limit");
  std::string past = good;
  past[1] = static_cast<char>(static_cast<unsigned char>(past[1]) + 1);  // 256 bytes more
  refused(past, "runs past the end of the file");
  // Shapes that do not match their offsets, overflow, holes, overlaps, dtypes.
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}})"),
          "tensor 'w': shape [2,4] of F32 needs 32 bytes but its offsets hold 24");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}})"),
          "more than 2^64");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[24,4000]}})"),
          "run past the data");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[28,36]}})"),
          "(a hole)");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[20,32]}})"),
          "(they overlap)");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]}})"),
          "the tensors cover 32 bytes of data but the file has 36");
  refused(with_header(good, R"({"w":{"dtype":"C64","shape":[3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[3],"data_offsets":[24,36]}})"),
          "dtype 'C64', which sslab does not read");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}})"), "non-negative integers");
  refused(with_header(good, R"({"w":{"dtype":"F32","shape":[6],"data_offsets":[24,0]}})"), "is before begin");
  refused(with_header(good, R"({"w":[1,2]})"), "tensor 'w' is not an object");
  refused(with_header(good, R"({"__metadata__":{"a":1}})"), "is not a string");
  refused(with_header(good, R"({"w":)"), "the header is not a JSON object");
  refused(with_header(good, R"([1])"), "does not start with '{'");
}

// A module with a child, a buffer and a parameter: names as PyTorch's.
struct Net : torch::nn::Module {
  Net() {
    fc = register_module("fc", torch::nn::Linear(3, 2));
    bn = register_module("bn", torch::nn::BatchNorm1d(2));
  }
  torch::nn::Linear fc{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};

TEST(Weights, StateDictNamesAndLoadingByName) {
  Net a, b;
  auto sd = sslab::state_dict(a);
  std::vector<std::string> names;
  for (const auto& [n, t] : sd) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean",
                                             "bn.running_var", "bn.num_batches_tracked"}));
  std::string line = sslab::load_weights_into(b, sd, {}, "a.safetensors", "encoders.x.init");
  EXPECT_NE(line.find("7 of 7 tensors from a.safetensors"), std::string::npos) << line;
  EXPECT_TRUE(torch::equal(a.fc->weight, b.fc->weight));
  // Prefixed names (a whole model's state dict) load with a rename.
  sslab::NamedTensors prefixed;
  for (const auto& [n, t] : sd) prefixed.emplace_back("module.backbone." + n, t * 2);
  sslab::InitOptions strip;
  strip.renames = {{"module.backbone.", ""}};
  sslab::load_weights_into(b, prefixed, strip, "p.pt", "where");
  EXPECT_TRUE(torch::allclose(b.fc->weight, a.fc->weight * 2));
}

TEST(Weights, MismatchesAreClearErrors) {
  Net net;
  auto sd = sslab::state_dict(net);
  // A wrong shape names the tensor, both shapes and the file, strict or not.
  auto wrong = sd;
  wrong[0].second = torch::zeros({4, 3});
  sslab::InitOptions lax;
  lax.strict = false;
  std::string msg = user_error([&] { sslab::load_weights_into(net, wrong, lax, "w.safetensors", "r.toml:3:1: encoders.x.init"); });
  EXPECT_NE(msg.find("r.toml:3:1: encoders.x.init: tensor 'fc.weight' is [4, 3] in w.safetensors but [2, 3] in the model"),
            std::string::npos) << msg;
  // Strict: a missing tensor and an unused one are named.
  auto missing = sd;
  missing.erase(missing.begin());
  msg = user_error([&] { sslab::load_weights_into(net, missing, {}, "w.safetensors", "here"); });
  EXPECT_NE(msg.find("lacks 1 of the model's 7 tensors: fc.weight"), std::string::npos) << msg;
  auto extra = sd;
  extra.emplace_back("head.weight", torch::zeros({1}));
  msg = user_error([&] { sslab::load_weights_into(net, extra, {}, "w.safetensors", "here"); });
  EXPECT_NE(msg.find("has 1 tensors the model has no place for: head.weight"), std::string::npos) << msg;
  // Not strict: what matches is loaded, the rest reported.
  Net other;
  std::string line = sslab::load_weights_into(other, missing, lax, "w.safetensors", "here");
  EXPECT_NE(line.find("6 of 7 tensors"), std::string::npos) << line;
  EXPECT_NE(line.find("kept their initialisation (fc.weight)"), std::string::npos) << line;
  // Nothing matching at all is an error even when not strict.
  sslab::NamedTensors foreign = {{"x", torch::zeros({1})}};
  msg = user_error([&] { sslab::load_weights_into(net, foreign, lax, "w.safetensors", "here"); });
  EXPECT_NE(msg.find("no tensor of w.safetensors matches"), std::string::npos) << msg;
}

TEST(Weights, InitSourcesAndDamagedFiles) {
  TempDir dir;
  Net net;
  auto sd = sslab::state_dict(net);
  sslab::save_safetensors(dir / "w.safetensors", sd);
  EXPECT_EQ(sslab::read_init_weights(dir / "w.safetensors", "encoders.x").size(), sd.size());
  // An export folder: <component>.safetensors beside sslab_export.json.
  dir.write("export/sslab_export.json", "{}");
  sslab::save_safetensors(dir / "export/encoders.x.safetensors", sd);
  EXPECT_EQ(sslab::read_init_weights(dir / "export", "encoders.x").size(), sd.size());
  std::string msg = user_error([&] { sslab::read_init_weights(dir / "export", "encoders.y"); });
  EXPECT_NE(msg.find("the export has no encoders.y.safetensors or .pt (it has: encoders.x.safetensors)"),
            std::string::npos) << msg;
  // A torch-format dict of tensors.
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [n, t] : sd) dict.insert(n, t);
  std::vector<char> pickled = torch::pickle_save(dict);
  dir.write("w.pt", std::string(pickled.begin(), pickled.end()));
  EXPECT_EQ(sslab::read_init_weights(dir / "w.pt", "encoders.x").size(), sd.size());
  // Cut and garbage files: clear errors naming the file, never a crash.
  std::string bytes = sslab::safetensors_bytes(sd);
  for (size_t cut : {size_t{3}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    dir.write("cut.safetensors", bytes.substr(0, cut));
    msg = user_error([&] { sslab::read_init_weights(dir / "cut.safetensors", "encoders.x"); });
    EXPECT_NE(msg.find(dir / "cut.safetensors"), std::string::npos) << cut << ": " << msg;
  }
  dir.write("junk.bin", "not weights at all");
  msg = user_error([&] { sslab::read_init_weights(dir / "junk.bin", "encoders.x"); });
  EXPECT_NE(msg.find("not a safetensors file, an sslab checkpoint"), std::string::npos) << msg;
  msg = user_error([&] { sslab::read_init_weights(dir / "nothing-here", "encoders.x"); });
  EXPECT_NE(msg.find("no such file or folder"), std::string::npos) << msg;
}

}  // namespace
