// Graceful stop for preemptible jobs: SIGTERM (SLURM and Kubernetes send it
// before killing), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's --signal) ask the
// trainer to finish the current step, write a checkpoint and exit with
// kExitInterrupted. A second signal ends the process at once, by the
// signal's default action.
#pragma once

#include "sslab/export.h"

namespace sslab {

// The exit status of a run stopped by a signal with its checkpoint written
// (EX_TEMPFAIL from sysexits.h: "try again later"; resume the run folder).
constexpr int kExitInterrupted = 75;

// Installs the handlers while it lives and restores the previous ones after.
// Only one instance may be alive at a time.
class SSLAB_API StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The first signal received since construction (SIGTERM, SIGINT or SIGUSR1), 0 if none.
  static int received();
  // "SIGTERM", "SIGINT", "SIGUSR1" or "signal N".
  static const char* name(int signal);
};

}  // namespace sslab
