// A valid shared library that is not an sslab plugin: no sslab_plugin_info().
extern "C" __attribute__((visibility("default"))) int not_a_plugin(void) { return 42; }
