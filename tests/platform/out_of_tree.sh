#!/usr/bin/env bash
# Out-of-tree plugin build against the installed SDK:
#   1. cmake --install the build into a fresh prefix;
#   2. check the installed sslab finds the installed template plugin;
#   3. configure and build plugins/template, unchanged, as a standalone
#      project with find_package(sslab) + sslab_add_plugin;
#   4. load that build with the installed sslab (plugins and check).
# usage: out_of_tree.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 source=$2 work=$3

fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
prefix=$work/prefix
unset SSLAB_PLUGIN_PATH

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log"; fail "install"; }
lib=$(dirname "$(find "$prefix" -name libsslab.so | head -n 1)")
[ "$lib" != . ] || fail "cmake --install did not install libsslab.so"
for f in "$prefix/bin/sslab" "$prefix/include/sslab/plugin.h" "$prefix/include/sslab/components.h" \
         "$lib/cmake/sslab/sslabConfig.cmake" "$lib/cmake/sslab/SslabPlugin.cmake" \
         "$lib/sslab/plugins/libsslab-template.so"; do
  [ -e "$f" ] || fail "cmake --install did not install $f"
done

echo "== the installed sslab loads the installed template plugin"
out=$("$prefix/bin/sslab" plugins --json)
echo "$out"
echo "$out" | python3 -c 'import json, sys
plugins = json.load(sys.stdin)["plugins"]
sys.exit(0 if any(p["name"] == "template" and p["file"] == sys.argv[1] and p["loaded"] for p in plugins) else 1)' \
  "$lib/sslab/plugins/libsslab-template.so" \
  || fail "installed sslab did not load $lib/sslab/plugins/libsslab-template.so"

# From here on only the out-of-tree build may provide the template plugin.
rm -rf "$lib/sslab/plugins"
mkdir -p "$lib/sslab/plugins"

echo "== configure plugins/template out of tree"
cp -r "$source/plugins/template" "$work/src"   # a copy, as a researcher would start
torch_dir=$(sed -n 's/^Torch_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")  # a LibTorch outside the default search path
cmake -S "$work/src" -B "$work/tpl" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  ${torch_dir:+"-DTorch_DIR=$torch_dir"}
echo "== build it"
cmake --build "$work/tpl"
plugin=$work/tpl/libsslab-template.so
[ -f "$plugin" ] || fail "the out-of-tree build did not produce $plugin"
grep -q "$lib/cmake/sslab" "$work/tpl/CMakeCache.txt" || fail "find_package(sslab) did not use the installed SDK"

echo "== the installed sslab loads the out-of-tree plugin"
out=$(SSLAB_PLUGIN_PATH="$work/tpl" "$prefix/bin/sslab" plugins)
echo "$out"
echo "$out" | grep -qF "template 0.1.0  $plugin" || fail "sslab plugins did not load $plugin"
echo "$out" | grep -qF "template.blobs" || fail "sslab plugins did not list template.blobs"
if echo "$out" | grep -qF "REFUSED"; then fail "a plugin was refused"; fi

out=$(SSLAB_PLUGIN_PATH="$work/tpl" "$prefix/bin/sslab" check "$source/recipes/smoke/template.toml")
echo "$out"
echo "$out" | grep -qF "ok (1 plugin(s) loaded)" || fail "sslab check with the out-of-tree plugin"

echo "== the out-of-tree template.cosine_views (on the installed two-view helpers) trains"
cat > "$work/views.toml" <<'EOF2'
[plugins]
load = ["template"]
[data.train]
type = "template.blobs"
size = 64
dim = 8
[views]
vector = 2
[[transforms."vector@*"]]
type = "template.noise"
[encoders.main]
type = "template.mlp"
in_dim = 8
[[objectives]]
type = "template.cosine_views"
encoder = "main"
[train]
steps = 2
batch_size = 16
workers = 0
threads = 1
[log]
progress = "none"
EOF2
SSLAB_PLUGIN_PATH="$work/tpl" "$prefix/bin/sslab" train "$work/views.toml" --out "$work/views_run" --no-eval \
  > "$work/views.log" 2>&1 || { cat "$work/views.log"; fail "sslab train with template.cosine_views out of tree"; }

echo "== docs/writing-plugins.md: extract the tutorial's plugin, build it out of tree, train its recipe"
python3 "$source/tests/platform/extract_tutorial.py" "$source/docs/writing-plugins.md" "$work/tutorial" \
  || fail "extracting the tutorial's code"
cmake -S "$work/tutorial" -B "$work/tutorial/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" ${torch_dir:+"-DTorch_DIR=$torch_dir"} || fail "configuring the tutorial plugin"
cmake --build "$work/tutorial/build" || fail "building the tutorial plugin"
[ -f "$work/tutorial/build/libsslab-waves.so" ] || fail "the tutorial build did not produce libsslab-waves.so"
export SSLAB_PLUGIN_PATH="$work/tutorial/build"
out=$("$prefix/bin/sslab" check "$work/tutorial/waves.toml") || fail "sslab check waves.toml: $out"
echo "$out"
"$prefix/bin/sslab" train "$work/tutorial/waves.toml" --out "$work/tutorial/run" || fail "sslab train waves.toml"
python3 - "$work/tutorial/run" <<'PY' || fail "the tutorial's run"
import json, sys
run = sys.argv[1]
ev = json.load(open(f"{run}/eval.json"))
losses = [json.loads(l)["loss"] for l in open(f"{run}/metrics.jsonl")]
print("eval.json:", json.dumps(ev))
print("loss: first %.4f last %.4f" % (losses[0], losses[-1]))
assert losses[-1] < 0.8 * losses[0], "the tutorial's loss did not fall"
for key in ("band/encoder", "band/random", "band/chance", "linear_probe", "knn", "baseline_random_encoder"):
    assert key in ev, f"eval.json has no {key}"
chance = ev["band/chance"]["accuracy"]
assert ev["band/encoder"]["knn_accuracy"] > 1.5 * chance, "the tutorial's encoder is not above chance"
PY
bad=$(sed 's/mask = 0.25/mask = 2/' "$work/tutorial/waves.toml" > "$work/tutorial/bad.toml"; \
      "$prefix/bin/sslab" check "$work/tutorial/bad.toml" 2>&1) && fail "a mask of 2 passed sslab check"
echo "$bad"
echo "$bad" | grep -q "bad.toml:.*objectives\.0\.mask must be <= 0.9, got 2" || fail "the tutorial's bad-recipe message"
unset SSLAB_PLUGIN_PATH

rm -rf "$work"
echo "PASS"
