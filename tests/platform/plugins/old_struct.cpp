// A plugin whose descriptor is smaller than the host's struct: refused.
#include <sslab/plugin.h>

static int register_nothing(sslab_registrar*, char*, size_t) { return 0; }

SSLAB_PLUGIN_EXPORT const sslab_plugin_info_t* sslab_plugin_info(void) {
  static const sslab_plugin_info_t info = {
      16,      SSLAB_API_VERSION_MAJOR,  SSLAB_API_VERSION_MINOR, "old_struct",
      "0.0.1", "a truncated descriptor", TORCH_VERSION,           &register_nothing};
  return &info;
}
