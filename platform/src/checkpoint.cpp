#include "sslab/host/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "sslab/error.h"
#include "sslab/host/accumulator.h"
#include "sslab/host/experiment.h"
#include "sslab/host/loader.h"
#include "sslab/host/online_probe.h"

namespace fs = std::filesystem;

namespace sslab {

std::string latest_checkpoint(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::string best;
  if (!fs::is_directory(dir)) return best;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string f = e.path().filename().string();
    if (f.rfind("step-", 0) == 0 && f.size() > 8 && f.substr(f.size() - 3) == ".pt" && f > fs::path(best).filename().string())
      best = e.path().string();
  }
  return best;
}

int64_t load_weights(Experiment& exp, const std::string& checkpoint) {
  CheckpointReader in(checkpoint, exp.context().device());
  for (const auto& [name, m] : exp.modules()) in.module("model/" + name, *m);
  return in.scalar("step");
}

// ---------------------------------------------------------------- writer

CheckpointWriter::CheckpointWriter() { scalar("format_version", kCheckpointFormat); }

void CheckpointWriter::scalar(const std::string& key, int64_t value) {
  out_.write(key, torch::tensor({value}, torch::kInt64));
}

void CheckpointWriter::bytes(const std::string& key, const std::string& value) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(value.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), value.data(), value.size());
  out_.write(key, t);
}

void CheckpointWriter::tensor(const std::string& key, const torch::Tensor& value) { out_.write(key, value); }

void CheckpointWriter::module(const std::string& key, torch::nn::Module& m) {
  torch::serialize::OutputArchive sub;
  m.save(sub);
  out_.write(key, sub);
}

void CheckpointWriter::optimizer(const std::string& key, torch::optim::Optimizer& o) {
  torch::serialize::OutputArchive sub;
  o.save(sub);
  out_.write(key, sub);
}

void CheckpointWriter::save(const std::string& file) {
  std::string tmp = file + ".tmp";
  out_.save_to(tmp);
  fs::rename(tmp, file);  // atomic: a reader sees the old or the new file
}

// ---------------------------------------------------------------- reader

CheckpointReader::CheckpointReader(const std::string& file, const torch::Device& device) : file_(file) {
  try {
    in_.load_from(file, device);
  } catch (const c10::Error& e) {
    throw UserError(str(file, ": not a readable sslab checkpoint (", e.what_without_backtrace(), ")"));
  }
  torch::Tensor v;
  SSLAB_CHECK(in_.try_read("format_version", v), file, ": not an sslab checkpoint (no format_version)");
  int64_t version = v.item<int64_t>();
  SSLAB_CHECK(version <= kCheckpointFormat, file, ": checkpoint format ", version,
              " is newer than this sslab reads (", kCheckpointFormat, "); update sslab");
}

int64_t CheckpointReader::scalar(const std::string& key) { return tensor(key).item<int64_t>(); }

bool CheckpointReader::bytes(const std::string& key, std::string& value) {
  torch::Tensor t;
  if (!in_.try_read(key, t)) return false;
  torch::Tensor c = t.contiguous();
  value.assign(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()));
  return true;
}

torch::Tensor CheckpointReader::tensor(const std::string& key) {
  torch::Tensor t;
  in_.read(key, t);
  return t;
}

void CheckpointReader::module(const std::string& key, torch::nn::Module& m) {
  torch::serialize::InputArchive sub;
  SSLAB_CHECK(in_.try_read(key, sub), file_, ": checkpoint has no '", key, "' (does it belong to this recipe?)");
  // Module::load replaces tensors without checking their shapes: compare
  // every parameter and buffer with the shape the recipe's model expects.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : m.named_parameters(true)) expected.emplace_back(p.key(), p.value().sizes().vec());
  for (const auto& b : m.named_buffers(true)) expected.emplace_back(b.key(), b.value().sizes().vec());
  try {
    m.load(sub);
  } catch (const c10::Error& e) {
    throw UserError(str(file_, ": checkpoint '", key, "' does not fit the recipe's model: ", e.what_without_backtrace()));
  }
  auto params = m.named_parameters(true);
  auto buffers = m.named_buffers(true);
  for (const auto& [name, shape] : expected) {
    const torch::Tensor* t = params.find(name);
    if (!t) t = buffers.find(name);
    SSLAB_ASSERT(t, "tensor ", name, " vanished while loading");
    SSLAB_CHECK(t->sizes().vec() == shape, file_, ": checkpoint '", key, "' does not fit the recipe's model: ", name,
                " is ", t->sizes(), " in the checkpoint but ", c10::IntArrayRef(shape), " in the model");
  }
}

bool CheckpointReader::optimizer(const std::string& key, torch::optim::Optimizer& o) {
  torch::serialize::InputArchive sub;
  if (!in_.try_read(key, sub)) return false;
  o.load(sub);
  return true;
}

// ---------------------------------------------------------------- training state

void save_checkpoint(const TrainingState& state, int64_t step, const std::string& run_dir, int64_t keep) {
  CheckpointWriter out;
  out.scalar("step", step);
  out.scalar("loader_epoch", state.loader.epoch());
  out.scalar("loader_batch", state.loader.batch_in_epoch());
  out.bytes("recipe", state.recipe.to_toml());
  out.tensor("rng", at::detail::getDefaultCPUGenerator().get_state());
  out.bytes("log_accumulator", state.accumulator.serialize());
  for (const auto& [name, m] : state.exp.modules()) out.module("model/" + name, *m);
  for (auto& [name, t] : HostAccess::ema_targets(state.exp.context())) out.module("ema/" + name, *t.target);
  out.optimizer("optimizer", state.optimizer);
  state.probes.save(out);
  char name[32];
  std::snprintf(name, sizeof(name), "step-%09ld.pt", static_cast<long>(step));
  fs::path dir = fs::path(run_dir) / "checkpoints";
  out.save((dir / name).string());
  // Keep the newest `keep` checkpoints.
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".pt") all.push_back(e.path());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + keep < all.size(); ++i) fs::remove(all[i]);
}

int64_t restore_checkpoint(const TrainingState& state, const std::string& file) {
  BuildContext& ctx = state.exp.context();
  CheckpointReader in(file, ctx.device());
  int64_t step = in.scalar("step");
  int64_t epoch = in.scalar("loader_epoch"), batch = in.scalar("loader_batch");
  for (const auto& [name, m] : state.exp.modules()) in.module("model/" + name, *m);
  // EMA targets requested while building are restored; others are recreated by objectives.
  for (auto& [name, t] : HostAccess::ema_targets(ctx)) in.module("ema/" + name, *t.target);
  SSLAB_CHECK(in.optimizer("optimizer", state.optimizer), file, ": checkpoint has no optimizer state");
  state.probes.load(in);
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // shares the default generator
  gen.set_state(in.tensor("rng"));
  // The checkpoint holds rank 0's generator; other ranks draw their own stream.
  int rank = ctx.rank();
  if (rank > 0)
    torch::manual_seed(ctx.seed() * 1000003ULL + static_cast<uint64_t>(rank) + static_cast<uint64_t>(step) * 7919ULL);
  std::string accumulator;
  if (in.bytes("log_accumulator", accumulator)) state.accumulator.deserialize(accumulator);
  state.loader.seek(epoch, batch);
  return step;
}

}  // namespace sslab
