#include "test_util.h"

#include "sslab/trainer.h"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace sslab_test {

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "sslab-test-XXXXXX").string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = fs::canonical(buf.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& relative, const std::string& text) const {
  fs::path p = path_ / relative;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
  return p.string();
}

std::string read_text(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

RunResult run(const std::string& command) {
  TempDir tmp;
  std::string out = tmp / "stdout", err = tmp / "stderr";
  int status = std::system((command + " >'" + out + "' 2>'" + err + "'").c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

std::string sslab_cli() { return std::string("'") + SSLAB_CLI + "'"; }

std::vector<double> metric(const std::string& run_dir, const std::string& key) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<double> out;
  std::string line, needle = "\"" + key + "\": ";
  while (std::getline(in, line)) {
    auto pos = line.find(needle);
    if (pos != std::string::npos) out.push_back(std::stod(line.substr(pos + needle.size())));
  }
  return out;
}

std::string train_and_kill_after_first_checkpoint(const std::string& args, const std::string& run_dir) {
  auto started = run(sslab_cli() + " train " + args + " > /dev/null 2>&1 & echo $!");
  pid_t pid = std::stoi(started.out);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (sslab::latest_checkpoint(run_dir).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return sslab::latest_checkpoint(run_dir);
}

}  // namespace sslab_test
