// The IDX reader (modalities/vision/idx_dataset.cpp): the input is an IDX
// file, plain or gzip, read as labels (1 dimension) and as images (3).
#include "../modalities/vision/idx_dataset.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sslab_fuzz::input_file(data, size, ".idx");
  for (int dims : {1, 3}) {
    SSLAB_FUZZ_REJECTS_CLEANLY({
      sslab::vision::IdxArray a = sslab::vision::read_idx(path, dims);
      SSLAB_FUZZ_CHECK(static_cast<int>(a.dims.size()) == dims);
      SSLAB_FUZZ_CHECK(a.data.sizes().vec() == a.dims);
    });
  }
  return 0;
}
