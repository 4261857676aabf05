// Fashion-MNIST (and MNIST) from IDX files, plain or gzip-compressed.
#pragma once

#include <cstdint>
#include <string>

#include <sslab/components.h>

namespace sslab::vision {

// The contents of one IDX file of unsigned bytes: its dimensions and data.
struct IdxArray {
  std::vector<int64_t> dims;  // e.g. {60000, 28, 28}
  torch::Tensor data;         // uint8, shaped dims
};

// Reads an IDX file of unsigned bytes (magic 0x0000 08 <ndims>), plain or gzip
// (zlib reads both transparently). Checks the magic number, that the number
// of dimensions is `expected_dims`, and that the file holds exactly the bytes
// the header promises. Every failure is a DataError naming the file.
IdxArray read_idx(const std::string& path, int expected_dims);

// Picks `<folder>/<name>` if it exists, else `<folder>/<name>.gz`; a
// DataError naming both when neither exists.
std::string find_idx_file(const std::string& folder, const std::string& name);

struct FashionMnistOptions {
  std::string root = "/usr/share/datasets/fashion-mnist";
  std::string split = "train";  // train or test
};

// Fashion-MNIST: split "train" (60000) or "test" (10000) read from `root`
// ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]). All images are loaded
// at construction; get() returns "image" float32 [1,28,28] in [0,1] and
// "label" int64 [].
class FashionMnist : public Dataset {
 public:
  FashionMnist(const std::string& root, const std::string& split);
  int64_t size() const override { return images_.size(0); }
  Sample get(int64_t index) const override;
  int64_t num_classes() const override { return 10; }

 private:
  torch::Tensor images_;  // uint8 [N,H,W]
  torch::Tensor labels_;  // int64 [N]
};

}  // namespace sslab::vision
