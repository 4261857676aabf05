// Embeddings of a split for pictures: TensorBoard's projector files
// (sslab eval --projector) and the 2-D maps of sslab report.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "loaded_run.h"

namespace sslab::cli {

struct SplitEmbeddings {
  std::string encoder;
  torch::Tensor x;       // [N, D] float32
  torch::Tensor labels;  // [N] int64, or undefined when the split has no "label"
  torch::Tensor images;  // [N, C, H, W] in [0, 1] when the encoder reads small images, else undefined
};

// The first `limit` samples of `split`, embedded by `encoder` ("" : every
// encoder of the run), as the evaluation embeds them.
std::vector<SplitEmbeddings> embed_split(Experiment& exp, const std::string& split, const std::string& encoder,
                                         int64_t limit, int64_t batch_size = 64);

// Writes <run_dir>/tensorboard/projector/<encoder>/{tensors,metadata}.tsv
// (and sprite.png of the images) and <run_dir>/tensorboard/projector_config.pbtxt,
// which TensorBoard's projector reads. Returns the config file.
std::string write_projector(const std::string& run_dir, const std::vector<SplitEmbeddings>& embeddings);

// The first two principal components of x [N, D]: [N, 2].
torch::Tensor pca_2d(const torch::Tensor& x);

}  // namespace sslab::cli
