// Registers test.shared (like dup_b) and a name of its own.
#include <sslab/plugin.h>

static void register_components(sslab::Registrar& r) {
  auto none = [](const sslab::Config&, sslab::BuildContext&) -> std::shared_ptr<sslab::Dataset> { return nullptr; };
  r.dataset("dup_a.own", "only in dup_a", sslab::Schema{}, none);
  r.dataset("test.shared", "in dup_a and dup_b", sslab::Schema{}, none);
}

SSLAB_PLUGIN("dup_a", "0.0.1", "registers test.shared", register_components)
