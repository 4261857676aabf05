// Helpers shared by the platform tests: temporary folders, files, running
// the sslab command, and catching an error's message.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sslab/error.h"

namespace sslab_test {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // Writes `text` to path()/relative (creating folders); returns the full path.
  std::string write(const std::string& relative, const std::string& text) const;
  std::string operator/(const std::string& relative) const { return (path_ / relative).string(); }

 private:
  fs::path path_;
};

std::string read_text(const std::string& file);

// A TCP port on 127.0.0.1 that was free a moment ago (for rendezvous tests).
int free_port();

// What a command printed and its exit code.
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs `command` with /bin/sh, capturing stdout and stderr.
RunResult run(const std::string& command);

// A command started in the background (`/bin/sh -c "exec COMMAND"`, so the
// pid is the command's own), its stdout and stderr captured.
class Background {
 public:
  explicit Background(const std::string& command);
  ~Background();  // SIGKILLs and reaps a command still running
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  int pid() const { return pid_; }
  void signal(int sig) const;
  // Waits for the end: exit code, or 128 + the signal that ended it.
  RunResult wait();

 private:
  TempDir tmp_;
  int pid_ = -1;
};
// The built sslab command, quoted for the shell.
std::string sslab_cli();

// A JSON file, parsed; throws naming the file when it is not JSON.
nlohmann::json read_json(const std::string& file);
// The values of `key` in each line of RUN_DIR/metrics.jsonl that has it (NaN
// for null); throws naming the line when a line is not JSON.
std::vector<double> metric(const std::string& run_dir, const std::string& key);
// Non-empty lines in RUN_DIR/metrics.jsonl so far (0 when it does not exist).
size_t metric_lines(const std::string& run_dir);

// Starts `sslab train <args>` (which must write its run folder to run_dir)
// in the background and SIGKILLs it as soon as its first checkpoint exists.
// Returns that checkpoint's path ("" if none appeared within the timeout).
std::string train_and_kill_after_first_checkpoint(const std::string& args, const std::string& run_dir);

// The message of the sslab::UserError that `f` throws; "<no exception>" or
// "<other exception: ...>" otherwise, so that substring checks fail clearly.
template <typename F>
std::string user_error(F&& f) {
  try {
    f();
  } catch (const sslab::UserError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception: ") + e.what() + ">";
  }
  return "<no exception>";
}

}  // namespace sslab_test
