#!/usr/bin/env bash
# The main job on a fresh machine: install packages, build, and train and
# evaluate the flagship recipe (MAE on Fashion-MNIST, about 20 minutes on 2
# cores). The run folder lands in runs/.
#   tools/run_main.sh [extra sslab train options, e.g. --set train.steps=100]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools/setup.sh
tools/build.sh
exec build/bin/sslab train recipes/vision/mae_fmnist.toml "$@"
