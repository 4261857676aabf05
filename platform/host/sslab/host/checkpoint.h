// Checkpoints: the file format (a LibTorch archive with a format version),
// what a training checkpoint holds, and reading it back.
//
//   format_version, step, loader_epoch, loader_batch   int64 scalars
//   recipe, log_accumulator                            bytes (uint8 tensors)
//   rng                                                rank 0's CPU generator
//   model/<name>, ema/<name>, probe/<encoder>          module archives
//   optimizer, probe_optimizer/<encoder>               optimizer archives
//
// Files are checkpoints/step-<9 digits>.pt in the run folder, written
// atomically (a reader sees the old or the new file) and flushed to the disk,
// each with step-<9 digits>.pt.crc32c beside it ("crc32c <hex> bytes <n>"),
// which the reader checks: LibTorch's own reader notices a cut file but not
// a damaged byte.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>
#include <string>

#include <torch/torch.h>

#include "sslab/error.h"
#include "sslab/export.h"

namespace sslab {

class Accumulator;
class Experiment;
class Loader;
class OnlineProbes;
class Recipe;

// The checkpoint format this sslab writes (and the newest it reads).
constexpr int64_t kCheckpointFormat = 1;

class CheckpointReader;

// A whole checkpoint written by a newer sslab (format above kCheckpointFormat).
class SSLAB_API CheckpointFormatError : public UserError {
 public:
  using UserError::UserError;
};

// The checkpoint files of a run folder, newest first.
SSLAB_API std::vector<std::string> checkpoints_newest_first(const std::string& run_dir);
// The newest checkpoint file of a run folder, or "" if none.
SSLAB_API std::string latest_checkpoint(const std::string& run_dir);
// The newest checkpoint that reads back whole (zip structure and checksum):
// an unreadable newest one is passed over with a warning naming both files
// (one from a newer sslab is not: CheckpointFormatError).
// UserError when the folder has none, or none is readable.
SSLAB_API std::unique_ptr<CheckpointReader> open_latest_checkpoint(const std::string& run_dir,
                                                                   const torch::Device& device, std::ostream& warnings);
// Loads the module weights of a checkpoint into an experiment's modules;
// returns the checkpoint's step.
SSLAB_API int64_t load_weights(Experiment& exp, const std::string& checkpoint);
SSLAB_API int64_t load_weights(Experiment& exp, CheckpointReader& checkpoint);

// Writes one checkpoint, key by key.
class CheckpointWriter {
 public:
  CheckpointWriter();  // writes format_version
  void scalar(const std::string& key, int64_t value);
  void bytes(const std::string& key, const std::string& value);
  void tensor(const std::string& key, const torch::Tensor& value);
  void module(const std::string& key, torch::nn::Module& m);
  void optimizer(const std::string& key, torch::optim::Optimizer& o);
  // Atomically: to file.tmp, flushed, its checksum written, then renamed.
  // A failed write (no space, quota, read-only) is a UserError naming the
  // file and the reason; nothing is left behind and older files are intact.
  void save(const std::string& file);

 private:
  torch::serialize::OutputArchive out_;
};

// Reads a checkpoint; tensors are mapped onto `device` as they are read (a
// checkpoint written on a GPU loads on the CPU and the other way round).
// Refuses files that are not sslab checkpoints or newer than kCheckpointFormat.
class CheckpointReader {
 public:
  CheckpointReader(const std::string& file, const torch::Device& device);
  int64_t scalar(const std::string& key);
  // false when the checkpoint has no `key`.
  bool bytes(const std::string& key, std::string& value);
  torch::Tensor tensor(const std::string& key);
  // Loads a module, checking every parameter and buffer shape against the model.
  void module(const std::string& key, torch::nn::Module& m);
  // The parameters and buffers of the module archive `key` by dotted name
  // (without building the module); false when the checkpoint has no `key`.
  bool module_tensors(const std::string& key, std::vector<std::pair<std::string, torch::Tensor>>& out);
  // false when the checkpoint has no `key`.
  bool optimizer(const std::string& key, torch::optim::Optimizer& o);
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  torch::serialize::InputArchive in_;
};

// What a training checkpoint holds, by reference into the run.
struct TrainingState {
  const Recipe& recipe;
  Experiment& exp;
  Loader& loader;
  torch::optim::Optimizer& optimizer;
  OnlineProbes& probes;
  Accumulator& accumulator;
};

// RUN_DIR/checkpoints/step-<9 digits>.pt.
SSLAB_API std::string checkpoint_path(const std::string& run_dir, int64_t step);
// After a checkpoint is complete: deletes all but the newest `keep`
// (checkpoint.keep_last) and what a killed save left behind (*.tmp).
SSLAB_API void prune_checkpoints(const std::string& run_dir, int64_t keep);

// Saves checkpoints/step-<step>.pt under run_dir; once it is complete, deletes
// all but the newest `keep` (checkpoint.keep_last).
void save_checkpoint(const TrainingState& state, int64_t step, const std::string& run_dir, int64_t keep);
// Restores everything from `file` (the loader position and the random
// generator included) and returns the checkpoint's step.
int64_t restore_checkpoint(const TrainingState& state, CheckpointReader& checkpoint);

}  // namespace sslab
