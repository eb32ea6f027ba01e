#!/usr/bin/env bash
# Warm `kiln shell --run true` and `kiln run` overhead, beside Nix 2.8's
# `nix-shell --run true` (and `nix run`) on the same expression
# (bench/shell/bench.nix). Needs hyperfine, /bin/busybox (static), root
# (for the `kiln setup` case and Nix's /nix/store); Nix is optional.
#
#   bench/shell/run.sh [KILN] [RUNS]      KILN: target/release/kiln
#
# kiln's store is a throwaway --root with its own store dir
# (/kiln-bench-<pid>/store), so the first cases run where the store is not
# at its logical path (a namespace per run, as for any --root store or
# ordinary user); `kiln setup` then makes it visible, for the direct case
# and for the baseline (the program run by itself). Undone at the end.
set -euo pipefail
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
here=$(cd "$(dirname "$0")" && pwd)
kiln=$(realpath "${1:-target/release/kiln}")
runs=${2:-50}
work=$(mktemp -d /tmp/kiln-bench-shell-XXXXXX)
store_dir=/kiln-bench-$$/store
export KILN_ROOT=$work/root KILN_STORE_DIR=$store_dir
trap '"$kiln" setup --undo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/p/busybox/bin"
cp /bin/busybox "$work/p/busybox/bin/"
cp "$here/bench.nix" "$work/p/default.nix"
cd "$work/p"

# Cold once (evaluates, builds the tool), so what follows is warm.
"$kiln" shell -A app --run true >/dev/null 2>&1
"$kiln" build -A tool -o result >/dev/null 2>&1
"$kiln" run -A tool -- x >/dev/null

hf() { hyperfine -N --warmup 5 --runs "$runs" --style basic --export-json "$work/$1.json" "${@:2}"; }
median() { python3 "$here/median.py" "$1"; }

echo "== kiln, store not at its logical path (a namespace per run)"
hf ns "$kiln shell -A app --run true" "$kiln run ./result -- x" "$kiln run -A tool -- x"
median "$work/ns.json"

echo "== kiln setup: the store at its logical path"
"$kiln" setup >/dev/null
hf direct "$kiln shell -A app --run true" "$kiln run ./result -- x" "$kiln run -A tool -- x" \
  "$store_dir/$(basename "$(readlink -f result)")/bin/tool x" "bash -c true" "$kiln --version"
median "$work/direct.json"
"$kiln" setup --undo >/dev/null

if command -v nix-shell >/dev/null; then
  echo "== Nix 2.8 (NIX_REMOTE= , no substituters), /nix/store"
  export NIX_REMOTE=
  nixopts=(--option substituters '')
  nix-shell "${nixopts[@]}" -A app --run true >/dev/null 2>&1
  nix-build "${nixopts[@]}" -A tool -o nix-result >/dev/null 2>&1
  cmds=("nix-shell --option substituters '' -A app --run true")
  if nix --extra-experimental-features nix-command run "${nixopts[@]}" -f . tool -- x >/dev/null 2>&1; then
    cmds+=("nix --extra-experimental-features nix-command run --option substituters '' -f . tool -- x")
  fi
  cmds+=("$(readlink -f nix-result)/bin/tool x")
  hyperfine --warmup 3 --runs "$runs" --style basic --export-json "$work/nix.json" "${cmds[@]}"
  median "$work/nix.json"
fi
