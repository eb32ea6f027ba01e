#!/bin/sh
# Durability cost: does syncing kiln's writes cost what kiln wrote, or what
# the whole machine has in flight? (issue 9)
#
# A cold `kiln instantiate` of bench/instantiate/chain.nix (2,000
# derivations) into a fresh root, beside `nix-instantiate` (Nix 2.8, which
# does not fsync .drv files), in two situations:
#
#   quiet  the file system has nothing dirty (`sync` before each run)
#   busy   another process has just written DIRTY_MB of data that is not
#          yet on disk (a file written without sync before each run), as
#          after unpacking or deleting a large tree
#
# A scheme that syncs the whole file system (`syncfs`) pays for the other
# process's data in the busy case; kiln's per-file `fdatasync` on a thread
# pool should not. Usage: bench/durability/run.sh [RUNS] (DIRTY_MB=512)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kiln=${KILN:-$here/../../target/release/kiln}
runs=${1:-5}
dirty_mb=${DIRTY_MB:-512}
file=$here/../instantiate/chain.nix
scratch=$(mktemp -d /tmp/kiln-bench-dur.XXXXXX)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
export NIX_REMOTE=

k=$("$kiln" --root "$scratch/k-check" --store-dir /nix/store instantiate "$file")
n=$(nix-instantiate --store "$scratch/n-check" "$file" 2>/dev/null)
if [ "$k" != "$n" ]; then
  echo "MISMATCH: kiln $k, nix $n" >&2
  exit 1
fi
echo "== chain.nix: both give $k"

# Each run gets a fresh directory named by a counter (no mass deletion
# between runs: that would be a busy case of its own).
echo 0 > "$scratch/count"
next='n=$(cat '"$scratch"'/count); echo $((n+1)) > '"$scratch"'/count;'
quiet="sync"
busy="rm -f $scratch/dirty; sync; head -c ${dirty_mb}M /dev/urandom > $scratch/dirty"

for situation in quiet busy; do
  eval "prepare=\$$situation"
  echo "== $situation"
  hyperfine --runs "$runs" --style basic --export-markdown "$scratch/$situation.md" \
    --prepare "$prepare" \
    -n kiln "sh -c '$next \"$kiln\" --root $scratch/k\$n --store-dir /nix/store instantiate $file >/dev/null'" \
    -n nix "sh -c '$next nix-instantiate --store $scratch/n\$n $file >/dev/null 2>&1'"
  cat "$scratch/$situation.md"
done
