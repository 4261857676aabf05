// Option parsing shared by the subcommands.
#pragma once

#include <boost/program_options.hpp>

#include <iostream>

#include "commands.h"

namespace sslab::cli {

namespace po = boost::program_options;

// Parses `args` against `opts` (which must declare "help,h"); `positional`,
// when given, names the option that takes the positional arguments (the
// first `max_positional` of them; -1: all). Returns false after printing the
// help when --help was asked for.
inline bool parse_args(const Args& args, const po::options_description& opts, const char* positional,
                       po::variables_map& vm, int max_positional = 1) {
  po::positional_options_description pos;
  if (positional) pos.add(positional, max_positional);
  po::store(po::command_line_parser(args).options(opts).positional(pos).run(), vm);
  po::notify(vm);
  if (vm.count("help")) {
    std::cout << opts;
    return false;
  }
  return true;
}

}  // namespace sslab::cli
