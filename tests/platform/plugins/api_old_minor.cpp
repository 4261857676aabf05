// A plugin built for an older minor plugin API than the host's (2.0 on a 2.1
// host): minor versions only add, so it loads unchanged.
#include <sslab/plugin.h>

static_assert(SSLAB_API_VERSION_MINOR >= 1, "this test needs a host minor version above 0");

static int register_nothing(sslab_registrar*, char*, size_t) { return 0; }

SSLAB_PLUGIN_EXPORT const sslab_plugin_info_t* sslab_plugin_info(void) {
  static const sslab_plugin_info_t info = {sizeof(sslab_plugin_info_t),
                                           SSLAB_API_VERSION_MAJOR,
                                           SSLAB_API_VERSION_MINOR - 1,
                                           "api_old_minor",
                                           "0.0.1",
                                           "an older minor plugin API",
                                           TORCH_VERSION,
                                           &register_nothing};
  return &info;
}
