// `sslab tokenizer train|encode`, the command the text plugin registers.
#pragma once

#include <string>
#include <vector>

namespace sslab::text {

// Runs `sslab tokenizer ARGS...`; returns the exit code, throws UserError.
int tokenizer_command(const std::vector<std::string>& args);

}  // namespace sslab::text
