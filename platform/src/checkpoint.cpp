#include "sslab/host/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "sslab/error.h"
#include "sslab/host/accumulator.h"
#include "sslab/host/experiment.h"
#include "sslab/host/loader.h"
#include "sslab/host/online_probe.h"
#include "sslab/host/run_log.h"

namespace fs = std::filesystem;

namespace sslab {

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

bool is_checkpoint_name(const std::string& f) {
  return f.rfind("step-", 0) == 0 && f.size() > 8 && f.substr(f.size() - 3) == ".pt";
}

// The checksum file beside a checkpoint: "crc32c <8 hex digits> bytes <size>".
std::string checksum_file(const std::string& checkpoint) { return checkpoint + ".crc32c"; }

// CRC-32C and size of a file, read in blocks; false when it cannot be read.
bool file_crc32c(const std::string& file, uint32_t& crc, uint64_t& size) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return false;
  std::vector<char> buf(1 << 20);
  crc = 0;
  size = 0;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    crc = crc32c_extend(crc, buf.data(), n);
    size += n;
  }
  bool ok = !std::ferror(f);
  std::fclose(f);
  return ok;
}

}  // namespace

std::vector<std::string> checkpoints_newest_first(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (is_checkpoint_name(e.path().filename().string())) out.push_back(e.path().string());
  std::sort(out.rbegin(), out.rend());  // step numbers have 9 digits: names sort by step
  return out;
}

std::string latest_checkpoint(const std::string& run_dir) {
  auto all = checkpoints_newest_first(run_dir);
  return all.empty() ? std::string() : all.front();
}

std::unique_ptr<CheckpointReader> open_latest_checkpoint(const std::string& run_dir, const torch::Device& device,
                                                         std::ostream& warnings) {
  auto all = checkpoints_newest_first(run_dir);
  SSLAB_CHECK(!all.empty(), run_dir, ": no checkpoint (checkpoints/step-*.pt)");
  std::string first_error;
  for (size_t i = 0; i < all.size(); ++i) {
    try {
      auto reader = std::make_unique<CheckpointReader>(all[i], device);
      if (i > 0)
        warnings << "warning: the newest checkpoint is unreadable (" << first_error << "); using the previous one, "
                 << all[i] << std::endl;
      return reader;
    } catch (const CheckpointFormatError&) {
      throw;  // whole, but from a newer sslab: an older checkpoint is no substitute
    } catch (const UserError& e) {
      if (i == 0) first_error = e.what();
    }
  }
  throw UserError(str(first_error, "; and no older checkpoint of ", run_dir, " is readable"));
}

int64_t load_weights(Experiment& exp, CheckpointReader& in) {
  for (const auto& [name, m] : exp.modules()) in.module("model/" + name, *m);
  return in.scalar("step");
}

int64_t load_weights(Experiment& exp, const std::string& checkpoint) {
  CheckpointReader in(checkpoint, exp.context().device());
  return load_weights(exp, in);
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
  const std::string tmp = file + ".tmp", sum = checksum_file(file), sum_tmp = sum + ".tmp";
  auto fail = [&](int err, const std::string& why) {
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::remove(sum_tmp, ec);
    throw UserError(str("cannot write the checkpoint ", file, ": ", err != 0 ? std::strerror(err) : why,
                        " (the previous checkpoint is kept)"));
  };
  // LibTorch's writer must never see a failed write: it throws, and its
  // destructor then throws again while unwinding (std::terminate). So the
  // archive goes through this sink, which records the first error, computes
  // the checksum on the way, and always reports success to LibTorch.
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(errno, "cannot create it");
  int err = 0;
  uint32_t crc = 0;
  uint64_t size = 0;
  try {
    out_.save_to([&](const void* data, size_t n) -> size_t {
      if (err == 0 && std::fwrite(data, 1, n, f) != n) err = errno != 0 ? errno : EIO;
      crc = crc32c_extend(crc, data, n);
      size += n;
      return n;
    });
  } catch (const c10::Error& e) {
    std::fclose(f);
    fail(0, e.what_without_backtrace());
  }
  // Flushed to the disk before it replaces anything: a crash after the
  // rename must not leave a renamed file whose blocks never reached the disk.
  if (err == 0 && std::fflush(f) != 0) err = errno;
  if (err == 0 && ::fsync(fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0) fail(err, "");
  std::FILE* s = std::fopen(sum_tmp.c_str(), "wb");
  if (!s) fail(errno, "");
  char line[64];
  int n = std::snprintf(line, sizeof(line), "crc32c %08x bytes %llu\n", crc, static_cast<unsigned long long>(size));
  if (std::fwrite(line, 1, static_cast<size_t>(n), s) != static_cast<size_t>(n) || std::fflush(s) != 0) err = errno;
  if (std::fclose(s) != 0 && err == 0) err = errno;
  if (err != 0) fail(err, "");
  // The checksum first, then the checkpoint: each rename is atomic, so a
  // reader sees the old or the new file, and a new checkpoint has its sum.
  std::error_code ec;
  fs::rename(sum_tmp, sum, ec);
  if (!ec) fs::rename(tmp, file, ec);
  if (ec) fail(ec.value(), ec.message());
}

// ---------------------------------------------------------------- reader

CheckpointReader::CheckpointReader(const std::string& file, const torch::Device& device) : file_(file) {
  // LibTorch's archive reader checks the zip structure (a cut file fails)
  // but not the data (a damaged byte loads as a wrong weight): the checksum
  // written beside the checkpoint does.
  std::ifstream sum(checksum_file(file));
  std::string word1, word2;
  std::string hex;
  unsigned long long want_size = 0;
  if (sum && (sum >> word1 >> hex >> word2 >> want_size) && word1 == "crc32c" && word2 == "bytes") {
    uint32_t crc = 0;
    uint64_t size = 0;
    SSLAB_CHECK(file_crc32c(file, crc, size), file, ": cannot read the checkpoint (", std::strerror(errno), ")");
    SSLAB_CHECK(size == want_size, file, ": the checkpoint is cut short or damaged (", size, " bytes, ",
                want_size, " written)");
    char got[16];
    std::snprintf(got, sizeof(got), "%08x", crc);
    SSLAB_CHECK(hex == got, file, ": the checkpoint is damaged (its CRC-32C is ", got, ", ", hex, " when written)");
  }
  // LibTorch throws c10::Error, torch::jit::ErrorReport or std::runtime_error
  // for a damaged archive: each is a file the user can fix, not a bug.
  try {
    in_.load_from(file, device);
  } catch (const c10::Error& e) {
    throw UserError(str(file, ": not a readable sslab checkpoint (", e.what_without_backtrace(), ")"));
  } catch (const std::exception& e) {
    throw UserError(str(file, ": not a readable sslab checkpoint (", first_line(e.what()), ")"));
  }
  torch::Tensor v;
  SSLAB_CHECK(in_.try_read("format_version", v) && v.numel() == 1 && !v.is_floating_point(), file,
              ": not an sslab checkpoint (no format_version)");
  int64_t version = v.item<int64_t>();
  if (version > kCheckpointFormat)
    throw CheckpointFormatError(str(file, ": checkpoint format ", version, " is newer than this sslab reads (",
                                    kCheckpointFormat, "); update sslab"));
}

int64_t CheckpointReader::scalar(const std::string& key) {
  torch::Tensor t = tensor(key);
  SSLAB_CHECK(t.numel() == 1 && !t.is_floating_point(), file_, ": checkpoint '", key, "' is not an integer scalar");
  return t.item<int64_t>();
}

bool CheckpointReader::bytes(const std::string& key, std::string& value) {
  torch::Tensor t;
  if (!in_.try_read(key, t)) return false;
  torch::Tensor c = t.contiguous();
  value.assign(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()));
  return true;
}

torch::Tensor CheckpointReader::tensor(const std::string& key) {
  torch::Tensor t;
  SSLAB_CHECK(in_.try_read(key, t), file_, ": checkpoint has no '", key, "' (is it damaged?)");
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

namespace {
void walk_archive(torch::serialize::InputArchive& archive, const std::string& prefix,
                  std::vector<std::pair<std::string, torch::Tensor>>& out, int depth) {
  SSLAB_CHECK(depth < 64, "module archive nested more than 64 deep");
  for (const auto& key : archive.keys()) {
    torch::Tensor t;
    if (archive.try_read(key, t)) {
      out.emplace_back(prefix + key, t);
      continue;
    }
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) walk_archive(sub, prefix + key + ".", out, depth + 1);
  }
}
}  // namespace

bool CheckpointReader::module_tensors(const std::string& key, std::vector<std::pair<std::string, torch::Tensor>>& out) {
  torch::serialize::InputArchive sub;
  if (!in_.try_read(key, sub)) return false;
  try {
    walk_archive(sub, "", out, 0);
  } catch (const c10::Error& e) {
    throw UserError(str(file_, ": checkpoint '", key, "' cannot be read: ", e.what_without_backtrace()));
  }
  return true;
}

bool CheckpointReader::optimizer(const std::string& key, torch::optim::Optimizer& o) {
  torch::serialize::InputArchive sub;
  if (!in_.try_read(key, sub)) return false;
  try {
    o.load(sub);
  } catch (const c10::Error& e) {
    throw UserError(str(file_, ": checkpoint '", key, "' does not fit the recipe's optimizer: ", e.what_without_backtrace()));
  }
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
  out.save(checkpoint_path(run_dir, step));
  prune_checkpoints(run_dir, keep);
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%09ld.pt", static_cast<long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

void prune_checkpoints(const std::string& run_dir, int64_t keep) {
  auto all = checkpoints_newest_first(run_dir);
  std::error_code ec;
  for (size_t i = static_cast<size_t>(std::max<int64_t>(keep, 1)); i < all.size(); ++i) {
    fs::remove(all[i], ec);
    fs::remove(checksum_file(all[i]), ec);
  }
  for (const auto& e : fs::directory_iterator(fs::path(run_dir) / "checkpoints", ec)) {
    std::string f = e.path().filename().string();
    if (f.size() > 4 && f.substr(f.size() - 4) == ".tmp") fs::remove(e.path(), ec);
  }
}

int64_t restore_checkpoint(const TrainingState& state, CheckpointReader& in) {
  BuildContext& ctx = state.exp.context();
  const std::string& file = in.file();
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
