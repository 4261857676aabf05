// The video reader (modalities/video/video_io.cpp, FFmpeg): the input is a
// video file (any container and codec FFmpeg recognises), opened as the
// datasets open one and read as a short clip from the start, then from the
// end (a seek), converted to 16x16 grey.
#include <algorithm>

#include "../modalities/video/video_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sslab_fuzz::input_file(data, size, ".mp4");
  SSLAB_FUZZ_REJECTS_CLEANLY({
    sslab::video::ReadOptions options;
    options.width = 16;
    options.height = 16;
    sslab::video::VideoReader reader(path, options);
    SSLAB_FUZZ_CHECK(reader.frame_count() > 0 && reader.fps() > 0);
    const int64_t count = std::min<int64_t>(reader.frame_count(), 2);
    torch::Tensor clip = reader.read_clip(0, count);
    SSLAB_FUZZ_CHECK(clip.sizes().vec() == (std::vector<int64_t>{count, 1, 16, 16}));
    if (reader.frame_count() > 2) reader.read_clip(reader.frame_count() - 1, 1);
  });
  return 0;
}
