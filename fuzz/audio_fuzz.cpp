// The audio reader (modalities/audio/audio_io.cpp, libsndfile): the input
// is an audio file (WAV, FLAC, Ogg, ... whatever libsndfile recognises),
// decoded and mixed down, then resampled to 16 kHz as the datasets load it.
//
// Only files at a common rate are resampled: resample() keeps a resampler
// per rate pair for the life of the thread, so arbitrary rates would grow
// that cache on every input, and libFuzzer would take each input for a
// possible leak and scan the heap after it (3 inputs/s instead of ~200).
#include <algorithm>

#include "../modalities/audio/audio_io.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = sslab_fuzz::input_file(data, size, ".wav");
  SSLAB_FUZZ_REJECTS_CLEANLY({
    const sslab::audio::DecodedAudio clip = sslab::audio::decode_audio(path);
    SSLAB_FUZZ_CHECK(!clip.samples.empty() && clip.channels >= 1);
    SSLAB_FUZZ_CHECK(clip.sample_rate >= sslab::audio::kMinSampleRate &&
                     clip.sample_rate <= sslab::audio::kMaxSampleRate);
    const int64_t common[] = {8000, 11025, 16000, 22050, 44100, 48000};
    if (std::find(std::begin(common), std::end(common), clip.sample_rate) != std::end(common)) {
      const std::vector<float> wave = sslab::audio::resample(clip.samples, clip.sample_rate, 16000, path);
      const int64_t want =
          (static_cast<int64_t>(clip.samples.size()) * 16000 + clip.sample_rate / 2) / clip.sample_rate;
      SSLAB_FUZZ_CHECK(static_cast<int64_t>(wave.size()) == want);
    }
  });
  return 0;
}
