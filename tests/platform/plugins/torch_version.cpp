// A plugin that says it was built against LibTorch 0.4.1: refused.
#include <sslab/plugin.h>

static int register_nothing(sslab_registrar*, char*, size_t) { return 0; }

SSLAB_PLUGIN_EXPORT const sslab_plugin_info_t* sslab_plugin_info(void) {
  static const sslab_plugin_info_t info = {sizeof(sslab_plugin_info_t),
                                           SSLAB_API_VERSION_MAJOR,
                                           SSLAB_API_VERSION_MINOR,
                                           "torch_version",
                                           "0.0.1",
                                           "built against another LibTorch",
                                           "0.4.1",
                                           &register_nothing};
  return &info;
}
