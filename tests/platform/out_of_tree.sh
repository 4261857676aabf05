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
echo "$out" | grep -qF "\"name\": \"template\", \"file\": \"$lib/sslab/plugins/libsslab-template.so\", \"loaded\": true" \
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

rm -rf "$work"
echo "PASS"
