// A plugin built for plugin API 99.0: the host must refuse it, naming both versions.
#include <sslab/plugin.h>

static int register_nothing(sslab_registrar*, char*, size_t) { return 0; }

SSLAB_PLUGIN_EXPORT const sslab_plugin_info_t* sslab_plugin_info(void) {
  static const sslab_plugin_info_t info = {
      sizeof(sslab_plugin_info_t), 99, 0, "api_major", "0.0.1", "plugin API 99.0", TORCH_VERSION, &register_nothing};
  return &info;
}
