// SwAV and DINO (ssl.swav, ssl.dino, ssl.dino_head): see clustering.cpp.
#pragma once

#include <cstdint>
#include <string>

#include <sslab/components.h>
#include <sslab/registry.h>

namespace sslab::ssl_plugin {

void register_clustering(Registrar& r);

// A head's input width (ssl.mlp, ssl.dino_head): the named encoder's
// embedding, else `in_dim`; a UserError at the recipe's in_dim when neither.
int64_t head_input_dim(const std::string& encoder, int64_t in_dim, const Config& cfg, BuildContext& ctx);

}  // namespace sslab::ssl_plugin
