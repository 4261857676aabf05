// The sslab subcommands. Each returns the process exit code and lets
// sslab::UserError escape (the dispatcher maps it to exit code 2).
#pragma once

#include <string>
#include <vector>

namespace sslab::cli {

using Args = std::vector<std::string>;

inline constexpr const char* kSslabVersion = "0.1.0";

int cmd_plugins(const Args& args);
int cmd_check(const Args& args);
int cmd_train(const Args& args);
int cmd_eval(const Args& args);
int cmd_doc(const Args& args);
int cmd_export(const Args& args);
int cmd_embed(const Args& args);
int cmd_sweep(const Args& args);
int cmd_compare(const Args& args);
int cmd_report(const Args& args);

}  // namespace sslab::cli
