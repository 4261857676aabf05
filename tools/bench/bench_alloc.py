"""Allocator parity for the Python side of the benchmarks.

`sslab` runs on jemalloc with decay disabled (freed tensor memory stays in
the process); a plain `python3` runs on glibc malloc, which unmaps large
freed blocks and faults them in again every step (~8 us a page on these
VMs). To compare the frameworks rather than the allocators, the benchmark
re-executes itself with the same jemalloc settings preloaded unless
`--python-alloc glibc` is given (useful to see the allocator's own cost).
It also gives the Python side sslab's OpenMP wait policy (PASSIVE unless
OMP_WAIT_POLICY is set).
"""
import os
import sys

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def ensure(alloc):
    """Re-exec under jemalloc when alloc == 'jemalloc'; returns a description.

    Either way the Python side gets sslab's OpenMP default too: sslab sets
    OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise, and the
    OpenMP runtime reads it only when it is loaded, hence the re-exec."""
    if "OMP_WAIT_POLICY" not in os.environ:
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    if alloc == "glibc":
        return "glibc malloc"
    if os.environ.get("SSLAB_BENCH_ALLOC") == "jemalloc":
        # This process has it; the programs it starts (sslab, spm_encode, ...) run as usual.
        os.environ.pop("LD_PRELOAD", None)
        os.environ.pop("MALLOC_CONF", None)
        return "jemalloc (" + CONF + ")"
    if not os.path.exists(JEMALLOC):
        print(f"note: {JEMALLOC} not found (apt-get install libjemalloc2); Python side uses glibc malloc",
              file=sys.stderr)
        return "glibc malloc (jemalloc missing)"
    env = dict(os.environ, LD_PRELOAD=JEMALLOC, MALLOC_CONF=CONF, SSLAB_BENCH_ALLOC="jemalloc")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)
    return ""  # not reached


def add_argument(ap):
    ap.add_argument("--python-alloc", choices=["jemalloc", "glibc"], default="jemalloc",
                    help="allocator of the PyTorch Python side (default jemalloc, as sslab)")


def build_target(build, target):
    """Builds one of the benchmark programs, which the default build leaves
    out (EXCLUDE_FROM_ALL: CI and users' builds need not compile them)."""
    import subprocess
    subprocess.run(["cmake", "--build", build, "--target", target], check=True,
                   stdout=subprocess.DEVNULL)
