// sslab sweep: one recipe over a grid of overrides and seeds, as a study
// folder of run folders (docs/studies.md).
//
//   STUDY/study.json             the recipe, overrides, grid, seeds and every run's folder
//   STUDY/sweep.log              one line per event: start, resume, skip, done, stopped, failed
//   STUDY/<point>/seed-<s>/      a run folder (`sslab train ... --out` it)
//   STUDY/<point>/seed-<s>.log   that run's stdout and stderr
//   STUDY/<point>/seed-<s>/DONE  written when the run (training and evaluation) exited 0
//
// Runs are child processes (`sslab train RECIPE --set ... --out DIR
// --or-resume --threads T`), `--jobs` at a time with the cores split
// between them. Rerunning the command skips DONE runs and continues the
// others from their newest checkpoint; a run is never started twice at once
// (a lock per run, held by its process).

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "args.h"
#include "commands.h"
#include "study.h"
#include "sslab/host/checkpoint.h"
#include "sslab/host/json.h"
#include "sslab/host/plugin_host.h"
#include "sslab/host/recipe_schema.h"
#include "sslab/host/run_folder.h"
#include "sslab/host/signals.h"
#include "sslab/recipe.h"

namespace fs = std::filesystem;

namespace sslab::cli {

namespace {

volatile sig_atomic_t g_stop_signal = 0;
void on_stop(int sig) { g_stop_signal = sig; }

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

std::string now_text() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return buf;
}

std::string shell_quote(const std::string& s) {
  bool plain = !s.empty();
  for (char c : s)
    plain &= std::isalnum(static_cast<unsigned char>(c)) || std::string("-_./=:,+@%").find(c) != std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Task {
  std::string point, dir, log, lock;
  std::vector<std::string> argv;  // after the program name
  bool resume = false;
};

struct Running {
  Task task;
  int lock_fd = -1;
  std::chrono::steady_clock::time_point start;
};

std::string self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("sslab") : p.string();
}

// Starts `exe argv...` with stdout and stderr appended to task.log; the child
// gets SIGTERM when the sweep dies (it checkpoints and stops) and keeps its
// own lock fd only.
pid_t spawn(const std::string& exe, const Task& task, int lock_fd, const std::vector<int>& other_fds) {
  pid_t pid = fork();
  SSLAB_CHECK(pid >= 0, "sslab sweep: fork failed (", std::strerror(errno), ")");
  if (pid > 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) _exit(75);  // the sweep died before prctl
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  for (int fd : other_fds)
    if (fd != lock_fd) close(fd);
  int out = open(task.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out >= 0) {
    dup2(out, 1);
    dup2(out, 2);
    close(out);
  }
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : task.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(exe.c_str(), argv.data());
  std::fprintf(stderr, "sslab sweep: cannot run %s: %s\n", exe.c_str(), std::strerror(errno));
  _exit(127);
}

}  // namespace

int cmd_sweep(const Args& args) {
  po::options_description opts("sslab sweep RECIPE --grid key=a,b [--grid ...] [options]");
  std::string recipe_file, out;
  std::vector<std::string> grids, sets;
  int64_t seeds = 1, jobs = 1;
  bool print = false;
  opts.add_options()("help,h", "show this help")(
      "grid", po::value(&grids),
      "a key and its values, key=a,b,c (TOML values as in --set; lists in brackets keep their commas); "
      "repeatable: the study is every combination")("seeds", po::value(&seeds)->default_value(1),
                                                    "runs per grid point, train.seed = the recipe's + 0..N-1")(
      "jobs", po::value(&jobs)->default_value(1),
      "runs side by side; each gets cores / jobs intra-op threads")(
      "set", po::value(&sets), "override a key in every run: key.path=value (repeatable)")(
      "out", po::value(&out), "the study folder (default: studies/<recipe name>)")(
      "print", po::bool_switch(&print),
      "write study.json and print each unfinished run's command instead (one line each: a SLURM array, "
      "torchrun or a shell loop runs them; rerunning a command continues its run)")(
      "recipe", po::value(&recipe_file), "recipe file");
  po::variables_map vm;
  if (!parse_args(args, opts, "recipe", vm)) return 0;
  if (recipe_file.empty()) throw po::error("a recipe file is required");
  if (grids.empty()) throw po::error("at least one --grid key=a,b is required");
  if (seeds < 1 || seeds > 1000) throw po::error("--seeds must be 1..1000");
  if (jobs < 1 || jobs > 256) throw po::error("--jobs must be 1..256");

  // The whole study is validated (plugins loaded) before anything runs: a
  // typo in the tenth point fails now, not an hour from now.
  Recipe base = Recipe::load(recipe_file, sets);
  if (out.empty()) out = (fs::path("studies") / base.name()).string();
  StudySpec spec = make_study(recipe_file, sets, grids, seeds, base);
  {
    PluginHost host;
    load_recipe_plugins(base, host);
    for (const auto& p : spec.points) {
      for (const auto& r : p.runs) {
        Recipe recipe = Recipe::load(recipe_file, r.sets);
        validate_recipe(recipe, Registries::global());
        validate_training(recipe);
      }
    }
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  SSLAB_CHECK(!ec, out, ": cannot create the study folder (", ec.message(), ")");
  save_study(spec, out);  // refuses a folder that holds another study

  const int threads = std::max(1, available_cores() / static_cast<int>(jobs));
  std::vector<Task> todo;
  int skipped = 0;
  for (const auto& p : spec.points) {
    for (const auto& r : p.runs) {
      Task t;
      t.point = p.id;
      t.dir = (fs::path(out) / r.dir).string();
      t.log = t.dir + ".log";
      t.lock = (fs::path(out) / ".locks" / (p.id + "-seed-" + std::to_string(r.seed) + ".lock")).string();
      if (fs::exists(fs::path(t.dir) / "DONE")) {
        ++skipped;
        continue;
      }
      t.resume = !latest_checkpoint(t.dir).empty();
      t.argv = {"train", fs::absolute(recipe_file).string()};
      for (const auto& s : r.sets) {
        t.argv.push_back("--set");
        t.argv.push_back(s);
      }
      t.argv.insert(t.argv.end(), {"--out", t.dir, "--or-resume", "--threads", std::to_string(threads)});
      todo.push_back(std::move(t));
    }
  }
  const size_t total = todo.size() + static_cast<size_t>(skipped);
  if (print) {
    for (const auto& t : todo) {
      std::string line = shell_quote(self_exe());
      for (const auto& a : t.argv) line += " " + shell_quote(a);
      std::cout << line << "\n";
    }
    std::cerr << "sslab sweep: " << out << "/study.json written; " << todo.size() << " of " << total
              << " runs to do (" << skipped << " done)\n";
    return 0;
  }

  std::ofstream log((fs::path(out) / "sweep.log").string(), std::ios::app);
  auto event = [&](const std::string& what, const std::string& dir, const std::string& more = "") {
    std::string rel = fs::path(dir).lexically_relative(out).string();
    log << now_text() << " " << what << " " << rel << (more.empty() ? "" : " " + more) << std::endl;
    std::cout << "[" << now_text().substr(11) << "] " << what << " " << rel << (more.empty() ? "" : " " + more)
              << std::endl;
  };
  std::cout << "sslab sweep: " << total << " runs in " << out << " (" << spec.points.size() << " points x " << seeds
            << " seeds), " << skipped << " already done, " << jobs << " at a time with " << threads
            << " thread(s) each" << std::endl;
  for (const auto& p : spec.points)
    for (const auto& r : p.runs)
      if (fs::exists(fs::path(out) / r.dir / "DONE")) event("skip", (fs::path(out) / r.dir).string(), "(done)");

  fs::create_directories(fs::path(out) / ".locks", ec);
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  const std::string exe = self_exe();
  std::map<pid_t, Running> running;
  std::vector<int> lock_fds;
  std::vector<std::string> failed;
  size_t next = 0, done = 0;
  int stopped = 0;
  bool forwarded = false;
  // Passes a stop signal on once: every run checkpoints and stops.
  auto forward_stop = [&] {
    if (!g_stop_signal || forwarded) return;
    forwarded = true;
    std::cout << "sslab sweep: stopping: " << running.size()
              << " run(s) write a checkpoint and stop; rerun the command to continue" << std::endl;
    for (const auto& [p, r] : running) kill(p, SIGTERM);
  };
  while (next < todo.size() || !running.empty()) {
    while (!g_stop_signal && next < todo.size() && static_cast<int64_t>(running.size()) < jobs) {
      Task& t = todo[next++];
      fs::create_directories(fs::path(t.dir).parent_path(), ec);
      int fd = open(t.lock.c_str(), O_RDWR | O_CREAT, 0644);
      SSLAB_CHECK(fd >= 0, t.lock, ": cannot open (", std::strerror(errno), ")");
      if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        std::cout << "waiting for an earlier sweep's process on " << t.dir << " to stop" << std::endl;
        while (flock(fd, LOCK_EX) != 0 && errno == EINTR && !g_stop_signal) {
        }
      }
      // The earlier process may have checkpointed while we waited.
      t.resume = !latest_checkpoint(t.dir).empty();
      lock_fds.push_back(fd);
      pid_t pid = spawn(exe, t, fd, lock_fds);
      event(t.resume ? "resume" : "start", t.dir, "(pid " + std::to_string(pid) + ", log " +
                                                      fs::path(t.log).lexically_relative(out).string() + ")");
      running[pid] = Running{t, fd, std::chrono::steady_clock::now()};
    }
    if (running.empty()) break;
    forward_stop();
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;  // forward_stop() at the top of the loop
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    Running r = it->second;
    running.erase(it);
    close(r.lock_fd);
    lock_fds.erase(std::remove(lock_fds.begin(), lock_fds.end(), r.lock_fd), lock_fds.end());
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.start).count();
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char took[32];
    std::snprintf(took, sizeof(took), "%.0f s", secs);
    if (code == 0) {
      write_file_atomic((fs::path(r.task.dir) / "DONE").string(), "exit 0 at " + now_text() + "\n");
      ++done;
      event("done", r.task.dir, std::string("(") + took + ", " + std::to_string(done + skipped) + "/" +
                                    std::to_string(total) + ")");
    } else if (code == kExitInterrupted || code == 128 + SIGTERM || code == 128 + SIGINT) {
      ++stopped;
      event("stopped", r.task.dir, "(checkpointed; rerun to continue)");
    } else {
      failed.push_back(r.task.dir);
      event("failed", r.task.dir, "(exit " + std::to_string(code) + "; see " + r.task.log + ")");
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  std::cout << "sslab sweep: " << done + skipped << " of " << total << " runs done";
  if (stopped) std::cout << ", " << stopped << " stopped";
  if (!failed.empty()) std::cout << ", " << failed.size() << " failed";
  std::cout << "; compare them with: sslab compare " << out << std::endl;
  if (g_stop_signal) return kExitInterrupted;
  if (!failed.empty()) {
    std::cerr << "sslab sweep: " << failed.size() << " run(s) failed (their logs say why); rerun the command to "
              << "retry them:\n";
    for (const auto& f : failed) std::cerr << "  " << f << ".log\n";
    return 1;
  }
  return 0;
}

}  // namespace sslab::cli
