// Weights in and out of sslab: a module's state dict under PyTorch's dotted
// names, and the `init` of an encoder or head from weights trained elsewhere
// (a safetensors file, an `sslab export` folder or file, or an sslab run or
// checkpoint).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "sslab/export.h"
#include "sslab/host/safetensors.h"

namespace sslab {

// The module's parameters, then its buffers, by dotted name as PyTorch's
// state_dict() names them ("blocks.0.attn.qkv.weight", "bn1.running_mean"),
// detached, contiguous, on the CPU.
SSLAB_API NamedTensors state_dict(torch::nn::Module& m);

// The tensors that `path` holds for `component` ("encoders.<name>" or
// "heads.<name>"):
//   - a safetensors file, or a .pt file from `sslab export --format torch`
//     (a pickled dict of tensors): all of its tensors;
//   - an `sslab export` folder (it has sslab_export.json): its
//     <component>.safetensors (or .pt);
//   - an sslab run folder: the newest readable checkpoint's model/<component>;
//   - an sslab checkpoint file (checkpoints/step-*.pt): its model/<component>.
// A file that is none of these, or lacks the component, is a UserError
// (DataError for a damaged file) naming it.
SSLAB_API NamedTensors read_init_weights(const std::string& path, const std::string& component);

struct InitOptions {
  bool strict = true;  // every model tensor in the file, every file tensor used
  // Prefix renames applied to the file's names before matching, in order:
  // {"module.", ""} strips "module.", {"backbone.", "encoder."} rewrites it.
  std::vector<std::pair<std::string, std::string>> renames;
};

// Copies `weights` (read from `file`) into m's parameters and buffers by
// name, converting dtypes. A tensor whose shape differs is a UserError naming
// `where`, the tensor, both shapes and the file; so, when strict, are model
// tensors the file lacks and file tensors the model lacks (up to five named,
// with the count). Returns one line: what was loaded and what was not.
SSLAB_API std::string load_weights_into(torch::nn::Module& m, const NamedTensors& weights, const InitOptions& options,
                                        const std::string& file, const std::string& where);

// "from=to" -> {"from", "to"}; a UserError naming `where` without '='.
SSLAB_API std::pair<std::string, std::string> parse_rename(const std::string& text, const std::string& where);

}  // namespace sslab
