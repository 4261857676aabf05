#!/usr/bin/env bash
# Installs every Debian package sslab needs (Debian 12). Idempotent: run it
# again after pulling; packages already installed are left as they are.
#   tools/setup.sh
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # LibTorch 1.13 (CPU) with a real BLAS: the default reference BLAS is ~12x slower
  libtorch-dev libopenblas0-openmp python3-torch python3-numpy
  # platform: recipes, CLI, plugin loading, checkpoints, distributed (c10d + gloo)
  libtomlplusplus-dev nlohmann-json3-dev libboost-dev libboost-program-options-dev zlib1g-dev libgloo-dev
  libjemalloc2
  # tests; chromium renders `sslab report` pages headless in the report test
  libgtest-dev libgmock-dev chromium
  # fuzzing (tools/fuzz.sh, run by .ci/run): clang with libFuzzer and the sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # vision plugin: image decoding (stb) and the Fashion-MNIST data set
  libstb-dev dataset-fashion-mnist
  # ---- plugins append their packages below this line ------------------------
  # text plugin: SentencePiece (library, trainer, spm_encode for the benchmark) and the fortune corpora
  libsentencepiece-dev sentencepiece fortunes fortunes-de fortunes-es fortunes-it
  # video plugin: FFmpeg demuxing/decoding/encoding and scaling (libavformat, libavcodec with libx264 /
  # libvpx-vp9 / mpeg4, libswscale), the ffmpeg program (benchmark) and imageio's real H.264 clips
  # (decoder tests); the leak-check test uses gcc's LeakSanitizer (liblsan0, with build-essential)
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg python3-imageio
  # audio plugin: decoding (libsndfile: WAV/FLAC/Ogg Vorbis/Opus), resampling (FFmpeg's
  # libswresample), synthetic spoken words (espeak-ng) and real Czech speech (fillets-ng-data-cs)
  libsndfile1-dev libswresample-dev libavutil-dev espeak-ng fillets-ng-data-cs
)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 2; }
  sudo=(sudo)
fi

missing=()
for p in "${packages[@]}"; do
  # ${Status} is "install ok installed" for an installed package.
  status=$(dpkg-query -W -f='${Status}' "$p" 2> /dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#packages[@]} packages are installed"
  exit 0
fi
echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
