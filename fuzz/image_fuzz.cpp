// The image decoder (load_image in modalities/vision/image_folder.cpp, with
// stb_image): the input is an image file (PNG, JPEG, BMP, ... whatever stb
// recognises), decoded to grey and to RGB.
#include "../modalities/vision/image_folder.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sslab_fuzz::input_file(data, size, ".png");
  for (int64_t channels : {1, 3}) {
    SSLAB_FUZZ_REJECTS_CLEANLY({
      torch::Tensor image = sslab::vision::load_image(path, channels);
      SSLAB_FUZZ_CHECK(image.dim() == 3 && image.size(0) == channels && image.size(1) > 0 && image.size(2) > 0);
      SSLAB_FUZZ_CHECK(image.min().item<float>() >= 0 && image.max().item<float>() <= 1);
    });
  }
  return 0;
}
