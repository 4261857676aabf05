// A plugin built for a newer minor plugin API than the host's: refused.
#include <sslab/plugin.h>

static int register_nothing(sslab_registrar*, char*, size_t) { return 0; }

SSLAB_PLUGIN_EXPORT const sslab_plugin_info_t* sslab_plugin_info(void) {
  static const sslab_plugin_info_t info = {sizeof(sslab_plugin_info_t),
                                           SSLAB_API_VERSION_MAJOR,
                                           SSLAB_API_VERSION_MINOR + 1,
                                           "api_minor",
                                           "0.0.1",
                                           "a newer minor plugin API",
                                           TORCH_VERSION,
                                           &register_nothing};
  return &info;
}
