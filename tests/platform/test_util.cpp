#include "test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sslab/files.h"
#include "sslab/host/trainer.h"

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
  sslab::remove_tree(path_.string());  // not fs::remove_all: see sslab/files.h
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

Background::Background(const std::string& command) {
  std::string out = tmp_ / "stdout", err = tmp_ / "stderr", line = "exec " + command;
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(out.c_str(), "w", stdout) || !freopen(err.c_str(), "w", stderr)) _exit(127);
    execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (pid < 0) throw std::runtime_error("fork failed for " + command);
  pid_ = pid;
}

Background::~Background() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
}

void Background::signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

RunResult Background::wait() {
  RunResult r;
  int status = 0;
  if (pid_ > 0 && waitpid(pid_, &status, 0) == pid_)
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_ = -1;
  r.out = read_text(tmp_ / "stdout");
  r.err = read_text(tmp_ / "stderr");
  return r;
}

size_t metric_lines(const std::string& run_dir) {
  std::istringstream lines(read_text(run_dir + "/metrics.jsonl"));
  size_t n = 0;
  for (std::string line; std::getline(lines, line);) n += !line.empty();
  return n;
}

std::string sslab_cli() { return std::string("'") + SSLAB_CLI + "'"; }

nlohmann::json read_json(const std::string& file) {
  try {
    return nlohmann::json::parse(read_text(file));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(file + ": not JSON (" + e.what() + ")");
  }
}

std::vector<double> metric(const std::string& run_dir, const std::string& key) {
  std::string file = run_dir + "/metrics.jsonl";
  std::ifstream in(file);
  std::vector<double> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(file + ":" + std::to_string(number) + ": not JSON (" + e.what() + ")");
    }
    auto it = j.find(key);
    if (it != j.end()) out.push_back(it->is_null() ? std::nan("") : it->get<double>());
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

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  SSLAB_ASSERT(port > 0, "no free TCP port on 127.0.0.1");
  return port;
}

}  // namespace sslab_test
