// The checkpoint reader (CheckpointReader in platform/src/checkpoint.cpp, a
// LibTorch archive): the input is a checkpoint file, opened and read the
// way `sslab eval` and a resumed run read one: the step, the recipe bytes,
// the generator state and a module's weights (shapes checked against the model).
#include "fuzz_util.h"

#include <sslab/host/checkpoint.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sslab_fuzz::input_file(data, size, ".pt");
  SSLAB_FUZZ_REJECTS_CLEANLY({
    sslab::CheckpointReader in(path, torch::kCPU);
    std::string recipe;
    in.bytes("recipe", recipe);
    torch::nn::Linear model(4, 2);
    in.module("model/encoder", *model);
    (void)in.scalar("step");
  });
  return 0;
}
