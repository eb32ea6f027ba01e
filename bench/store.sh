#!/usr/bin/env bash
# Store benchmarks, side by side with Nix when it is installed.
#
#   bench/store.sh [WORKDIR]
#
# 1. NAR-hash a 500 MB tree of mixed file sizes:
#      kiln hash path   vs   nix-hash --type sha256   vs   openssl dgst -sha256
#    over a file holding the same NAR bytes (the single-core SHA-256 limit).
#    Target: kiln within 1.15x of openssl.
# 2. Add the tree to an empty store:
#      kiln store add   vs   nix-store --add (a throwaway chroot store).
#    Target: kiln at most 0.8x of Nix's time.
#
# The tree is deterministic (AES-CTR keystream with a fixed key, cut by
# `split`), so every run hashes the same bytes. Timings use hyperfine when
# installed (mean of several runs, page cache warm), else repeated `date`.
# Results go to bench/runs/<date>-<machine>/. CPU-heavy: a few minutes.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${1:-${TMPDIR:-/tmp}/kiln-bench}"
runs="${RUNS:-5}"
out="$here/runs/$(date -u +%Y-%m-%d)-$(hostname -s)"
mkdir -p "$work" "$out"

echo "== building kiln (release)"
(cd "$repo" && cargo build --release --quiet)
kiln="$repo/target/release/kiln"

# --- the tree -----------------------------------------------------------
tree="$work/tree"
keystream() { # BYTES SEED: deterministic pseudo-random bytes
  # openssl dies of SIGPIPE when head has enough; that is the normal end.
  { openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$2")" -iv 0 </dev/zero 2>/dev/null || true; } |
    head -c "$1"
}
if [ ! -f "$tree/.complete" ]; then
  echo "== generating a 500 MB tree in $tree"
  rm -rf "$tree"
  mkdir -p "$tree/huge" "$tree/medium" "$tree/bin"
  keystream 200M 1 | split -b 20M -d -a 2 - "$tree/huge/part-"     # 10 x 20 MB
  keystream 100M 2 | split -b 1M -d -a 3 - "$tree/medium/blob-"    # 100 x 1 MB
  for d in $(seq -w 0 9); do                                       # 1000 x 100 KB
    mkdir -p "$tree/small/$d"
    keystream 10M "$((100 + 10#$d))" | split -b 100K -d -a 3 - "$tree/small/$d/f-"
  done
  for d in $(seq -w 0 19); do                                      # 10000 x 10 KB (+ rest)
    mkdir -p "$tree/tiny/$d"
    keystream 5000K "$((200 + 10#$d))" | split -b 10K -d -a 3 - "$tree/tiny/$d/t-"
  done
  keystream 2M 3 | split -b 64K -d -a 2 - "$tree/bin/tool-"
  chmod +x "$tree"/bin/tool-*
  ln -s ../huge/part-00 "$tree/bin/link"
  touch "$tree/.complete"
fi
du -sh --apparent-size "$tree"

nar="$work/tree.nar"
"$kiln" store dump "$tree" >"$nar"
echo "NAR: $(stat -c %s "$nar") bytes"

# --- timing helpers -----------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
nix_available=false
if have nix-hash && have nix-store; then nix_available=true; fi

# time_cmd NAME PREPARE CMD: mean seconds of CMD over $runs runs
# (PREPARE runs untimed before each run).
declare -A mean
time_cmd() {
  local name="$1" prepare="$2" cmd="$3"
  if have hyperfine; then
    hyperfine --style basic --runs "$runs" --warmup 1 --prepare "$prepare" \
      --export-json "$out/$name.json" --command-name "$name" "$cmd" >"$out/$name.txt"
    mean[$name]="$(jq '.results[0].mean' "$out/$name.json")"
  else
    local total=0 t0 t1
    bash -c "$prepare; $cmd" >/dev/null
    for _ in $(seq "$runs"); do
      bash -c "$prepare"
      t0=$(date +%s%N)
      bash -c "$cmd" >/dev/null
      t1=$(date +%s%N)
      total=$((total + t1 - t0))
    done
    mean[$name]="$(echo "scale=4; $total / $runs / 1000000000" | bc)"
  fi
  printf '%-22s %8.3f s\n' "$name" "${mean[$name]}"
}
ratio() { echo "scale=3; $1 / $2" | bc; }

# --- 1. NAR hashing ------------------------------------------------------
echo "== hashing (mean of $runs runs)"
echo "kiln:    $("$kiln" hash path --base16 "$tree")"
echo "openssl: $(openssl dgst -sha256 -r "$nar" | cut -d' ' -f1)"
$nix_available && echo "nix:     $(nix-hash --type sha256 "$tree")"
time_cmd openssl-nar true "openssl dgst -sha256 '$nar'"
time_cmd kiln-hash-path true "'$kiln' hash path '$tree'"
$nix_available && time_cmd nix-hash true "nix-hash --type sha256 '$tree'"

# --- 2. adding to a store --------------------------------------------------
echo "== store add (mean of $runs runs, empty store each time)"
kroot="$work/kiln-root"
time_cmd kiln-store-add "rm -rf '$kroot'; sync" "'$kiln' --root '$kroot' store add '$tree'"
if $nix_available; then
  nroot="$work/nix-root"
  time_cmd nix-store-add "rm -rf '$nroot'; sync" \
    "NIX_REMOTE= nix-store --store 'local?root=$nroot' --add '$tree'"
  kpath="$("$kiln" --root "$kroot" store add "$tree")"
  npath="$(NIX_REMOTE= nix-store --store "local?root=$nroot" --add "$tree")"
  echo "kiln path (/kiln/store): $kpath"
  echo "nix path  (/nix/store):  $npath"
  echo "kiln with --store-dir /nix/store: $("$kiln" --root "$work/kiln-nix-root" --store-dir /nix/store store add "$tree")"
fi
rm -rf "$kroot" "${nroot:-}" "$work/kiln-nix-root"

# --- summary ---------------------------------------------------------------
{
  echo "# kiln store benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "kiln: $(git -C "$repo" rev-parse --short HEAD)  nix: $($nix_available && nix-store --version || echo absent)"
  echo "tree: $(du -s --apparent-size -B1 "$tree" | cut -f1) bytes, $(find "$tree" -type f | wc -l) files; NAR $(stat -c %s "$nar") bytes"
  echo
  for name in openssl-nar kiln-hash-path nix-hash kiln-store-add nix-store-add; do
    [ -n "${mean[$name]:-}" ] && printf '%-16s %8.3f s\n' "$name" "${mean[$name]}"
  done
  echo
  echo "kiln hash path / openssl:  $(ratio "${mean[kiln-hash-path]}" "${mean[openssl-nar]}")  (target <= 1.15)"
  if $nix_available; then
    echo "nix-hash / openssl:        $(ratio "${mean[nix-hash]}" "${mean[openssl-nar]}")"
    echo "kiln store add / nix:      $(ratio "${mean[kiln-store-add]}" "${mean[nix-store-add]}")  (target <= 0.80)"
  fi
} | tee "$out/summary.txt"
echo "results in $out"
