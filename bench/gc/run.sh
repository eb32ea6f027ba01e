#!/usr/bin/env bash
# GC of a store with 10,000 dead paths and 1,000 live ones (one root file
# referring to all of them): `kiln store gc` beside `nix-store --gc` on the
# same paths (both made by builtins.toFile from store.nix, so the two stores
# hold identical files). Each round restores a fresh copy of both stores,
# syncs, and times one collection of each, interleaved.
#
# usage: bench/gc/run.sh [ROUNDS] [WORKDIR]   (kiln from target/release)
set -euo pipefail
rounds=${1:-3}
work=${2:-/tmp/kiln-bench-gc}
here=$(cd "$(dirname "$0")" && pwd)
kiln=${KILN:-$here/../../target/release/kiln}
export NIX_REMOTE=
rm -rf "$work" && mkdir -p "$work"
cd "$work"

root=$("$kiln" --root "$work/k" --store-dir /nix/store eval --read-write-mode "$here/store.nix" | tr -d '"')
"$kiln" --root "$work/k" --store-dir /nix/store store add-root "$root" "$work/k-result" >/dev/null
nix-instantiate --store "$work/n" --option substituters '' --eval --read-write-mode "$here/store.nix" >/dev/null 2>&1
nix-store --store "$work/n" --add-root "$work/n-result" -r "$root" >/dev/null
echo "kiln store: $(ls "$work/k/nix/store" | wc -l) entries; nix store: $(ls "$work/n/nix/store" | wc -l) entries"
mv k k.orig && mv n n.orig

seconds() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
: > times.txt
for i in $(seq "$rounds"); do
    rm -rf k n && cp -a k.orig k && cp -a n.orig n && sync
    tk=$(seconds "$kiln" --root "$work/k" --store-dir /nix/store store gc)
    tn=$(seconds nix-store --store "$work/n" --gc)
    left_k=$(ls k/nix/store | wc -l); left_n=$(ls n/nix/store | grep -v '^\.links$' | wc -l)
    echo "round $i: kiln ${tk}s ($left_k left), nix ${tn}s ($left_n left)" | tee -a times.txt
done
python3 - "$work/times.txt" <<'PY'
import re, statistics, sys
k, n = [], []
for line in open(sys.argv[1]):
    m = re.search(r"kiln ([0-9.]+)s.*nix ([0-9.]+)s", line)
    k.append(float(m[1])); n.append(float(m[2]))
mk, mn = statistics.median(k), statistics.median(n)
print(f"median: kiln {mk:.2f}s ({mk/10000*1e6:.0f} us/path), nix {mn:.2f}s ({mn/10000*1e6:.0f} us/path), kiln/nix {mk/mn:.2f}x")
PY
