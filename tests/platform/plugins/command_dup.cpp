// Registers the command test-greet too (like the command plugin).
#include <sslab/plugin.h>

static void register_components(sslab::Registrar& r) {
  r.command("test-greet", "another greeting", [](const std::vector<std::string>&) { return 0; });
}

SSLAB_PLUGIN("command_dup", "0.0.1", "registers test-greet as well", register_components)
