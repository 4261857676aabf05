#!/usr/bin/env bash
# The CUDA path on a GPU machine whose Python has a CUDA PyTorch (pip wheel):
# builds sslab (platform + vision) against that LibTorch, runs the CUDA tests
# (device placement, bf16 autocast, a GPU checkpoint read on the CPU, NCCL),
# the platform/trainer/SSL/vision suites, then the MAE benchmark against the
# same model in PyTorch Python on the GPU (fp32 and bf16, with MFU).
#
#   tools/bench/gpu_check.sh [DEB_DIR] [OUT_DIR]
#
# DEB_DIR (default .devdeps) holds Debian 12 .deb files of what the machine
# lacks (Boost program_options, toml++, GoogleTest, stb, zlib, jemalloc,
# dataset-fashion-mnist); they are unpacked into /opt/sslab-deps, not into /.
# Logs go to OUT_DIR (default gpu-check/). SSLAB_GPU_CHECK_QUICK=1: build and
# tests only (no benchmark, no full recipe). Every step has its own time limit
# so that one slow step does not hide the others' results.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
debs=${1:-$root/.devdeps}
out=${2:-$root/gpu-check}
peak=${SSLAB_PEAK_TFLOPS:-989}  # H100/H200 SXM dense bf16
mkdir -p "$out"
cd "$root"
step() { echo "== $(date +%T) $*" | tee -a "$out/summary.txt"; }

step "machine"
{ nvidia-smi -L; g++ --version | head -1; cmake --version | head -1; nproc
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
} 2>&1 | tee -a "$out/summary.txt"

deps=/opt/sslab-deps
mkdir -p "$deps"
for f in "$debs"/*.deb; do dpkg -x "$f" "$deps"; done
arch_lib=$deps/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$arch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fmnist=$deps/usr/share/datasets/fashion-mnist
if [ ! -e /usr/share/datasets/fashion-mnist ] && [ -d "$fmnist" ]; then
  mkdir -p /usr/share/datasets && ln -s "$fmnist" /usr/share/datasets/fashion-mnist
fi

step "configure"
torch_cmake=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
# zlib1g-dev's libz.so points at /lib/.../libz.so.1.2.13, absent there: link the machine's own libz.so.1.
zlib=()
zlib_so=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
[ -n "$zlib_so" ] && zlib=(-DZLIB_LIBRARY="$zlib_so" -DZLIB_LIBRARY_RELEASE="$zlib_so" -DZLIB_INCLUDE_DIR="$deps/usr/include")
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSSLAB_MODALITIES=vision \
  -DCMAKE_PREFIX_PATH="$torch_cmake;$deps/usr" -DTORCH_CUDA_ARCH_LIST=9.0 "${zlib[@]}" \
  >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
grep -E "sslab:|NCCL|jemalloc" "$out/configure.log" | tee -a "$out/summary.txt"

step "build"
timeout 300 cmake --build build-gpu -j"$(nproc)" -- -k 0 >"$out/build.log" 2>&1
rc=$?
grep -E "error|FAILED" "$out/build.log" | head -40
tail -3 "$out/build.log" | tee -a "$out/summary.txt"
[ "$rc" = 0 ] || echo "build exit $rc" | tee -a "$out/summary.txt"

step "CUDA tests"
timeout 150 ctest --test-dir build-gpu -R "Cuda" --output-on-failure -j4 >"$out/ctest_cuda.log" 2>&1
tail -12 "$out/ctest_cuda.log" | tee -a "$out/summary.txt"


bench() {
  step "bench $1"
  timeout 100 python3 tools/bench/bench.py recipes/vision/mae_fmnist.toml --device cuda --precision "$1" \
    --threads 8 --steps 60 --peak-tflops "$peak" --python-alloc glibc --sslab build-gpu/bin/sslab \
    --data-root "$fmnist" 2>&1 | tail -6 | tee -a "$out/summary.txt"
}
quick=${SSLAB_GPU_CHECK_QUICK:-0}
[ "$quick" = 1 ] || bench bf16

step "CPU suites (platform, trainer, SSL, distributed, vision) on LibTorch 2.x"
timeout "${SSLAB_GPU_CHECK_CPU_TESTS_S:-150}" ctest --test-dir build-gpu -E "Cuda|audio|text|Audio|Text" -j12 --output-on-failure \
  --timeout 100 >"$out/ctest_cpu.log" 2>&1
grep -E "tests passed|Failed|\*\*\*|Not Run" "$out/ctest_cpu.log" | head -30 | tee -a "$out/summary.txt"

[ "$quick" = 1 ] && { step "done (quick)"; exit 0; }
bench fp32

step "MAE recipe trained on the GPU, bf16, with evaluation"
timeout 120 build-gpu/bin/sslab train recipes/vision/mae_fmnist.toml --out /tmp/mae-gpu \
  --set train.device='"cuda"' --set train.precision='"bf16"' --set train.threads=8 \
  --set log.progress='"none"' >"$out/mae_gpu.log" 2>&1
tail -15 "$out/mae_gpu.log" | tee -a "$out/summary.txt"
cp /tmp/mae-gpu/metrics.jsonl "$out/mae_gpu_metrics.jsonl" 2>/dev/null
step "done"
