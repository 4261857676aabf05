// sslab: the command-line entry point.
//
// Exit codes: 0 success, 2 a user's error (bad recipe, argument, plugin or
// data file), 1 an internal failure. Errors are one line on stderr.
#include <boost/program_options/errors.hpp>
#include <c10/util/Exception.h>

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include "commands.h"
#include "sslab/error.h"

namespace {

const char* kUsage =
    "usage: sslab <command> [options]\n"
    "\n"
    "commands:\n"
    "  plugins [--json] [--path DIR]...          list plugins and what they register\n"
    "  check RECIPE [--set key=value]...          load plugins and validate a recipe\n"
    "  train RECIPE [--set key=value]... [--out DIR]   train (and evaluate) a recipe\n"
    "  train --resume RUN_DIR                      continue a run from its last checkpoint\n"
    "  eval RUN_DIR [--json]                       evaluate a trained run\n"
    "  tokenizer train|encode [options]            train a SentencePiece model, or encode text with one\n"
    "\n"
    "environment: SSLAB_PLUGIN_PATH  extra plugin folders (colon-separated)\n"
    "run 'sslab <command> --help' for a command's options\n";

using Command = int (*)(const sslab::cli::Args&);

// Keeps freed memory in the process: a training step allocates and frees
// the same large tensors every time, and returning them to the kernel makes
// every step fault its pages in again (slow on VMs).
void tune_allocator() {
#ifndef SSLAB_WITH_JEMALLOC
  if (std::getenv("SSLAB_DEFAULT_MALLOC")) return;
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);  // the largest glibc allows
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 * 1024 * 1024);
#endif
}

}  // namespace

#ifdef SSLAB_WITH_JEMALLOC
// Read by jemalloc at start-up (MALLOC_CONF in the environment overrides it).
extern "C" {
__attribute__((visibility("default"))) const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
#endif

int main(int argc, char** argv) {
  tune_allocator();
  std::map<std::string, Command> commands = {
      {"plugins", sslab::cli::cmd_plugins},
      {"check", sslab::cli::cmd_check},
      {"train", sslab::cli::cmd_train},
      {"eval", sslab::cli::cmd_eval},
      {"tokenizer", sslab::cli::cmd_tokenizer},
  };
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  if (name == "--version") {
    std::cout << "sslab 0.1.0\n";
    return 0;
  }
  auto it = commands.find(name);
  if (it == commands.end()) {
    std::cerr << "sslab: unknown command '" << name << "'\n" << kUsage;
    return 2;
  }
  sslab::cli::Args args(argv + 2, argv + argc);
  try {
    return it->second(args);
  } catch (const sslab::UserError& e) {
    std::cerr << "sslab " << name << ": error: " << e.what() << "\n";
    return 2;
  } catch (const boost::program_options::error& e) {
    std::cerr << "sslab " << name << ": error: " << e.what() << " (see 'sslab " << name << " --help')\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "sslab " << name << ": internal error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sslab " << name << ": internal error: " << e.what() << "\n";
    return 1;
  }
}
