// Registers the encoder test.twice twice.
#include <sslab/plugin.h>

static void register_components(sslab::Registrar& r) {
  auto none = [](const sslab::Config&, sslab::BuildContext&) -> std::shared_ptr<sslab::Encoder> { return nullptr; };
  r.encoder("dup_self.once", "registered once", sslab::Schema{}, none);
  r.encoder("test.twice", "first", sslab::Schema{}, none);
  r.encoder("test.twice", "second", sslab::Schema{}, none);
}

SSLAB_PLUGIN("dup_self", "0.0.1", "registers a name twice", register_components)
