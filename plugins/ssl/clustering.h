// SwAV and DINO (ssl.swav, ssl.dino, ssl.dino_head): see clustering.cpp.
#pragma once

#include <sslab/registry.h>

namespace sslab::ssl_plugin {

void register_clustering(Registrar& r);

}  // namespace sslab::ssl_plugin
