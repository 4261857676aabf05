// A plugin whose register function registers a name, then throws: the host
// refuses it with the exception's message and registers nothing.
#include <sslab/plugin.h>

#include <stdexcept>

static void register_components(sslab::Registrar& r) {
  r.dataset("throws.before", "registered before the throw", sslab::Schema{},
            [](const sslab::Config&, sslab::BuildContext&) -> std::shared_ptr<sslab::Dataset> { return nullptr; });
  throw std::runtime_error("cannot find libfoo.so.3 (deliberate test failure)");
}

SSLAB_PLUGIN("throws", "0.0.1", "register throws", register_components)
