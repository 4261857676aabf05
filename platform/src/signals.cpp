#include "sslab/host/signals.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "sslab/error.h"

namespace sslab {

namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1};
volatile sig_atomic_t g_received = 0;
std::atomic<bool> g_installed{false};
struct sigaction g_previous[3];

void write_stderr(const char* text) {
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

// Async-signal-safe: a flag, a fixed message, and for the second signal the
// default action re-raised.
void on_signal(int sig) {
  if (g_received != 0) {
    write_stderr("\nsslab: second signal: stopping now, without a checkpoint\n");
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_received = sig;
  write_stderr(sig == SIGINT ? "\nsslab: SIGINT: stopping after this step with a checkpoint (again: stop now)\n"
               : sig == SIGUSR1
                   ? "\nsslab: SIGUSR1: stopping after this step with a checkpoint (again: stop now)\n"
                   : "\nsslab: SIGTERM: stopping after this step with a checkpoint (again: stop now)\n");
}

}  // namespace

StopSignals::StopSignals() {
  SSLAB_ASSERT(!g_installed.exchange(true), "StopSignals installed twice");
  g_received = 0;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // reads and writes in progress carry on
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
  g_installed = false;
}

int StopSignals::received() { return g_received; }

const char* StopSignals::name(int signal) {
  switch (signal) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
  }
}

}  // namespace sslab
