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
# `split`), so every run hashes the same bytes. The commands of a case run
# interleaved for RUNS rounds (default 5) after an untimed warm-up round,
# timed with `date +%s%N` (hyperfine cannot interleave). Results go to
# bench/runs/<date>-<machine>/. CPU-heavy: a few minutes.
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
# The machine may be shared and its load drifts, so the commands of a case
# run interleaved (A B C, A B C, …) rather than all runs of A then all of B:
# each round compares runs made under the same conditions. Raw times go to
# times.csv; means and the median of the per-round ratios are printed.
have() { command -v "$1" >/dev/null 2>&1; }
nix_available=false
if have nix-hash && have nix-store; then nix_available=true; fi

csv="$out/times.csv"
echo "case,command,round,seconds" >"$csv"
declare -A mean

# interleave CASE ROUNDS NAME PREPARE CMD [NAME PREPARE CMD]...
# PREPARE runs untimed before each run of CMD.
interleave() {
  local case="$1" rounds="$2"
  shift 2
  local -a names=() prepares=() cmds=()
  while [ $# -gt 0 ]; do
    names+=("$1"); prepares+=("$2"); cmds+=("$3"); shift 3
  done
  local i r t0 t1
  for i in "${!names[@]}"; do # warm-up round, untimed
    bash -c "${prepares[$i]}"; bash -c "${cmds[$i]}" >/dev/null
  done
  for r in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
      bash -c "${prepares[$i]}"
      t0=$(date +%s%N)
      bash -c "${cmds[$i]}" >/dev/null
      t1=$(date +%s%N)
      echo "$case,${names[$i]},$r,$(echo "scale=6; ($t1 - $t0) / 1000000000" | bc)" >>"$csv"
    done
  done
  for i in "${!names[@]}"; do
    mean[${names[$i]}]=$(awk -F, -v n="${names[$i]}" '$2 == n { s += $4; c++ } END { printf "%.4f", s / c }' "$csv")
    printf '%-16s mean %8.3f s over %d rounds\n' "${names[$i]}" "${mean[${names[$i]}]}" "$rounds"
  done
}

# median over the rounds of time(A) / time(B)
median_ratio() {
  awk -F, -v a="$1" -v b="$2" '
    $2 == a { ta[$3] = $4 } $2 == b { tb[$3] = $4 }
    END {
      n = 0; for (r in ta) if (r in tb) q[++n] = ta[r] / tb[r]
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (q[j] < q[i]) { t = q[i]; q[i] = q[j]; q[j] = t }
      printf "%.3f", (n % 2) ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
    }' "$csv"
}
ratio() { echo "scale=3; $1 / $2" | bc; }

# --- 1. NAR hashing ------------------------------------------------------
echo "== hashing"
echo "kiln:    $("$kiln" hash path --base16 "$tree")"
echo "openssl: $(openssl dgst -sha256 -r "$nar" | cut -d' ' -f1)"
hash_cases=(openssl-nar true "openssl dgst -sha256 '$nar'"
            kiln-hash-path true "'$kiln' hash path '$tree'")
if $nix_available; then
  echo "nix:     $(nix-hash --type sha256 "$tree")"
  hash_cases+=(nix-hash true "nix-hash --type sha256 '$tree'")
fi
interleave hash "$runs" "${hash_cases[@]}"

# --- 2. adding to a store --------------------------------------------------
# Each run adds to a new, empty store. Before the clock starts, `sync`
# writes back what earlier runs left dirty, so no command pays for another's
# data. Stores are deleted only after the case: deleting 500 MB right
# before a run makes file creation several times slower on ext4 (freed
# blocks and discards being processed), which would measure the file
# system, not the tools.
echo "== store add"
stores="$work/stores"
rm -rf "$stores"; mkdir -p "$stores"; sync
fresh='$(mktemp -d -p '"'$stores'"')'
add_cases=(kiln-store-add sync "'$kiln' --root \"$fresh\" store add '$tree'")
if $nix_available; then
  add_cases+=(nix-store-add sync
              "NIX_REMOTE= nix-store --store \"local?root=$fresh\" --add '$tree'")
fi
interleave add "$runs" "${add_cases[@]}"
if $nix_available; then
  kpath="$("$kiln" --root "$(mktemp -d -p "$stores")" --store-dir /nix/store store add "$tree")"
  npath="$(NIX_REMOTE= nix-store --store "local?root=$(mktemp -d -p "$stores")" --add "$tree")"
  echo "same path as Nix with --store-dir /nix/store: $kpath vs $npath"
fi
rm -rf "$stores"

# --- summary ---------------------------------------------------------------
{
  echo "# kiln store benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(hostname -s)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kiln: $(git -C "$repo" rev-parse --short HEAD)  nix: $($nix_available && nix-store --version || echo absent)"
  echo "tree: $(du -s --apparent-size -B1 "$tree" | cut -f1) bytes, $(find "$tree" -type f | wc -l) files; NAR $(stat -c %s "$nar") bytes"
  echo "rounds: $runs, interleaved (raw times in times.csv)"
  echo
  for name in openssl-nar kiln-hash-path nix-hash kiln-store-add nix-store-add; do
    [ -n "${mean[$name]:-}" ] && printf '%-16s mean %8.3f s\n' "$name" "${mean[$name]}"
  done
  echo
  echo "ratios: median of the per-round ratios (ratio of the means)"
  echo "kiln hash path / openssl:  $(median_ratio kiln-hash-path openssl-nar) ($(ratio "${mean[kiln-hash-path]}" "${mean[openssl-nar]}"))  target <= 1.15"
  if $nix_available; then
    echo "nix-hash / openssl:        $(median_ratio nix-hash openssl-nar) ($(ratio "${mean[nix-hash]}" "${mean[openssl-nar]}"))"
    echo "kiln store add / nix:      $(median_ratio kiln-store-add nix-store-add) ($(ratio "${mean[kiln-store-add]}" "${mean[nix-store-add]}"))  target <= 0.80"
  fi
} | tee "$out/summary.txt"
echo "results in $out"
