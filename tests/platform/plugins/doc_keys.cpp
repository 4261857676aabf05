// Declares a dataset with keys of every kind, for `sslab doc`: what a schema
// declares must show up there with no other change.
#include <sslab/plugin.h>

static void register_components(sslab::Registrar& r) {
  sslab::Schema s;
  s.integer("size", int64_t{16}, "how many samples").min(1);
  s.number("rate", 0.5, "a share").min(0).max(1);
  s.string("mode", "fast", "how to go").choices({"fast", "slow"});
  s.strings("files", sslab::required, "what to read").path();
  s.boolean("shuffle", true, "shuffle them");
  auto none = [](const sslab::Config&, sslab::BuildContext&) -> std::shared_ptr<sslab::Dataset> { return nullptr; };
  r.dataset("doc_keys.data", "a dataset that only declares keys", s, none);
}

SSLAB_PLUGIN("doc_keys", "0.0.1", "keys for sslab doc", register_components)
