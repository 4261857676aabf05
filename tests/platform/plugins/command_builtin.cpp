// Registers a command named like the built-in `sslab train`.
#include <sslab/plugin.h>

static void register_components(sslab::Registrar& r) {
  r.command("train", "not the real train", [](const std::vector<std::string>&) { return 0; });
}

SSLAB_PLUGIN("command_builtin", "0.0.1", "registers a command named train", register_components)
