#!/bin/sh
# Instantiation benchmark: kiln vs Nix 2.8 (`nix-instantiate`), side by side.
#
#   chain.nix  2,000 derivations, each depending on the previous one
#   fanin.nix  2,000 independent derivations and one that depends on all
#
# Two situations per case, each measured with hyperfine:
#   cold  a new empty store each run (every .drv is written and registered)
#   warm  the same store again (every .drv is already valid)
#
# The cold runs start with `sync` so neither tool pays for flushing the
# previous run's deletions (kiln syncs its writes before registering them;
# Nix 2.8 does not fsync .drv files).
#
# Nix runs against a throwaway chroot store (`--store /tmp/…`, which Nix
# 2.8 accepts with NIX_REMOTE empty and never touches /nix); kiln against a
# throwaway --root, with --store-dir /nix/store so both print the same
# paths (checked before timing). Usage: bench/instantiate/run.sh [RUNS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kiln=${KILN:-$here/../../target/release/kiln}
runs=${1:-5}
scratch=$(mktemp -d /tmp/kiln-bench-inst.XXXXXX)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
export NIX_REMOTE=

for case in chain fanin; do
  file=$here/$case.nix
  k=$("$kiln" --root "$scratch/k-check" --store-dir /nix/store instantiate "$file")
  n=$(nix-instantiate --store "$scratch/n-check" "$file" 2>/dev/null)
  if [ "$k" != "$n" ]; then
    echo "MISMATCH for $case: kiln $k, nix $n" >&2
    exit 1
  fi
  echo "== $case: both give $k"
  # Each cold run gets a fresh, never-used directory (a counter picks the
  # name) instead of deleting the last one: mass deletions make ext4's
  # inode allocator scan recently freed inodes, which would dominate both.
  echo 0 > "$scratch/count"
  next='n=$(cat '"$scratch"'/count); echo $((n+1)) > '"$scratch"'/count;'
  hyperfine --runs "$runs" --warmup 1 --export-markdown "$scratch/$case-cold.md" \
    --prepare "sync" \
    -n "kiln cold" "sh -c '$next exec $kiln --root $scratch/k\$n --store-dir /nix/store instantiate $file'" \
    -n "nix cold" "sh -c '$next exec nix-instantiate --store $scratch/n\$n $file'"
  "$kiln" --root "$scratch/k" --store-dir /nix/store instantiate "$file" >/dev/null
  nix-instantiate --store "$scratch/n" "$file" >/dev/null 2>&1
  hyperfine --runs "$runs" --warmup 1 --export-markdown "$scratch/$case-warm.md" \
    -n "kiln warm" "$kiln --root $scratch/k --store-dir /nix/store instantiate $file" \
    -n "nix warm" "nix-instantiate --store $scratch/n $file"
  cat "$scratch/$case-cold.md" "$scratch/$case-warm.md"
done
