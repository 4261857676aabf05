// ssl.paired: one sample from several datasets at the same index (paired.cpp).
#pragma once

#include <memory>

#include "sslab/components.h"

namespace sslab::ssl_plugin {

Schema paired_schema();
std::shared_ptr<Dataset> make_paired_dataset(const Config& cfg, BuildContext& ctx);

}  // namespace sslab::ssl_plugin
