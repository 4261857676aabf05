// sslab: the command-line entry point.
//
// Exit codes: 0 success, 2 a user's error (bad recipe, argument, plugin or
// data file), 1 an internal failure. Errors are one line on stderr.
#include <boost/program_options/errors.hpp>
#include <c10/util/Exception.h>

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>

#include "commands.h"
#include "sslab/error.h"
#include "sslab/host/plugin_host.h"
#include "sslab/recipe.h"
#include "sslab/registry.h"

namespace {

const char* kUsage =
    "usage: sslab <command> [options]\n"
    "\n"
    "commands:\n"
    "  plugins [--json] [--path DIR]...          list plugins and what they register\n"
    "  check RECIPE [--set key=value]...          load plugins and validate a recipe\n"
    "  train RECIPE [--set key=value]... [--out DIR]   train (and evaluate) a recipe\n"
    "  train --resume RUN_DIR                      continue a run from its last checkpoint\n"
    "  eval RUN_DIR [--protocol P] [--json]        evaluate a trained run (P: probe, finetune, fewshot)\n"
    "  doc NAME [--json] | doc --all [--markdown]  the keys of a recipe section or component, with defaults\n"
    "  export RUN_DIR [--format safetensors|torch]  the run's encoders and heads for Python (and `init`)\n"
    "  embed RUN_DIR --out FILE.npy|.safetensors  a split's embeddings with labels and sample indices\n"
    "  sweep RECIPE --grid key=a,b [--seeds N] [--jobs J]  a study: every grid point and seed, resumable\n"
    "  compare RUN_OR_STUDY... [--format table|csv|json]  runs side by side, mean ± std over seeds\n"
    "  report RUN_OR_STUDY... --out report.html  one self-contained page: results, curves, pictures, maps\n";
const char* kUsageEnd =
    "\n"
    "environment: SSLAB_PLUGIN_PATH  extra plugin folders (colon-separated)\n"
    "run 'sslab <command> --help' for a command's options\n";

using Command = int (*)(const sslab::cli::Args&);

// OpenMP threads that spin while they wait steal the core of whatever else
// runs on the machine, and a spinning team whose partner is descheduled
// collapses (a 2-thread MAE step: 14x slower beside one busy process). The
// OpenMP runtime reads OMP_WAIT_POLICY when it is loaded, before main, so the
// default is set from the executable's pre-initialisers, which run before any
// shared library's; a value the user set is kept. Measurements: docs/trainer.md.
void default_omp_wait_policy(int, char**, char**) { setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0); }
__attribute__((section(".preinit_array"), used)) void (*const preinit_omp)(int, char**, char**) = default_omp_wait_policy;

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

// Loads every plugin the search path holds (as `sslab plugins` does), so that
// their commands are registered; returns how many were refused.
size_t load_plugins() {
  sslab::PluginHost host;
  size_t refused = 0;
  for (const auto& record : host.discover())
    if (!record.loaded) ++refused;
  return refused;
}

std::string refused_note(size_t refused) {
  if (refused == 0) return "";
  return sslab::str(" (", refused, " plugin(s) refused: see 'sslab plugins')");
}

void print_usage(std::ostream& out) {
  out << kUsage;
  size_t refused = load_plugins();
  const auto& commands = sslab::Registries::global().commands;
  out << "\nplugin commands" << refused_note(refused) << ":\n";
  if (commands.empty()) out << "  none found\n";
  for (const auto& [name, entry] : commands) {
    std::string pad(name.size() < 42 ? 42 - name.size() : 1, ' ');
    out << "  " << name << pad << entry.doc << " (plugin " << entry.plugin << ")\n";
  }
  out << kUsageEnd;
}

// Runs a command and turns what escapes it into an exit code and one line.
template <typename F>
int run_command(const std::string& name, F&& command) {
  try {
    return command();
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

}  // namespace

#ifdef SSLAB_WITH_JEMALLOC
// Read by jemalloc at start-up (MALLOC_CONF in the environment overrides it).
extern "C" {
__attribute__((visibility("default"))) const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
#endif

int main(int argc, char** argv) {
  tune_allocator();
  // A file size limit (ulimit -f) makes a write fail with EFBIG, which the
  // writers report as one clear error, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  std::map<std::string, Command> commands = {
      {"plugins", sslab::cli::cmd_plugins},
      {"check", sslab::cli::cmd_check},
      {"train", sslab::cli::cmd_train},
      {"eval", sslab::cli::cmd_eval},
      {"doc", sslab::cli::cmd_doc},
      {"export", sslab::cli::cmd_export},
      {"embed", sslab::cli::cmd_embed},
      {"sweep", sslab::cli::cmd_sweep},
      {"compare", sslab::cli::cmd_compare},
      {"report", sslab::cli::cmd_report},
  };
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    print_usage(std::cout);
    return argc < 2 ? 2 : 0;
  }
  std::string name = argv[1];
  if (name == "--version") {
    std::cout << "sslab " << sslab::cli::kSslabVersion << "\n";
    return 0;
  }
  sslab::cli::Args args(argv + 2, argv + argc);
  auto it = commands.find(name);
  if (it != commands.end()) return run_command(name, [&] { return it->second(args); });

  // Not a built-in command: one a plugin registers?
  size_t refused = load_plugins();
  const sslab::Registries& registries = sslab::Registries::global();
  if (const sslab::CommandEntry* command = registries.find_command(name))
    return run_command(name, [&] { return command->run(args); });
  std::vector<std::string> known;
  for (const auto& c : commands) known.push_back(c.first);
  for (const auto& c : registries.commands) known.push_back(c.first);
  std::sort(known.begin(), known.end());
  std::cerr << "sslab: unknown command '" << name << "'; " << sslab::suggestion_text(name, known)
            << refused_note(refused) << "\nrun 'sslab --help' for the commands\n";
  return 2;
}
