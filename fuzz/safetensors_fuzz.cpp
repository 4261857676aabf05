// The safetensors reader (platform/src/safetensors.cpp), which `init` uses
// on files from anywhere: any input is either refused with a DataError or
// read into tensors that the writer turns back into a file the reader reads
// to the same tensors.
#include "sslab/host/safetensors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  SSLAB_FUZZ_REJECTS_CLEANLY({
    sslab::SafetensorsContents c = sslab::parse_safetensors(bytes, "fuzz.safetensors");
    sslab::SafetensorsContents again =
        sslab::parse_safetensors(sslab::safetensors_bytes(c.tensors, c.metadata), "again.safetensors");
    SSLAB_FUZZ_CHECK(again.tensors.size() == c.tensors.size());
    for (size_t i = 0; i < c.tensors.size(); ++i) {
      SSLAB_FUZZ_CHECK(again.tensors[i].first == c.tensors[i].first);
      SSLAB_FUZZ_CHECK(again.tensors[i].second.sizes() == c.tensors[i].second.sizes());
      SSLAB_FUZZ_CHECK(again.tensors[i].second.scalar_type() == c.tensors[i].second.scalar_type());
    }
    SSLAB_FUZZ_CHECK(again.metadata == c.metadata);
  });
  return 0;
}
