#!/usr/bin/env bash
# Side-by-side benchmark of `kiln eval` and Nix 2.8's `nix-instantiate
# --eval`: whole-process wall time (hyperfine, when installed) and peak
# resident memory (/usr/bin/time -v). Writes a Markdown table to
# bench/runs/<date>-<host>/eval.md and prints it.
#
#   bench/eval/run.sh [--runs N] [path/to/kiln]
#
# Build kiln first: cargo build --release. Timings are never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=10
if [[ "${1:-}" == "--runs" ]]; then RUNS=$2; shift 2; fi
KILN=${1:-target/release/kiln}
[[ -x "$KILN" ]] || { echo "no kiln binary at $KILN (cargo build --release)"; exit 1; }
KILN=$(realpath "$KILN")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source bench/eval/cases.sh
generate_big_file

HAVE_NIX=0
command -v nix-instantiate >/dev/null && HAVE_NIX=1
export NIX_REMOTE=

OUT_DIR="bench/runs/$(date -u +%Y-%m-%d)-$(hostname -s)"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/eval.md"

peak_kb() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }

# "WALL CPU": mean wall time and mean user+system CPU time of a command,
# in seconds. CPU time is the steadier figure on a busy machine.
mean_s() {
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/h.json" "$1" >/dev/null 2>&1
    python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))["results"][0]; print("%.3f %.3f" % (r["mean"], r["user"] + r["system"]))' "$WORK/h.json"
  else
    local start end
    start=$(date +%s.%N)
    for _ in $(seq "$RUNS"); do bash -c "$1" >/dev/null 2>&1; done
    end=$(date +%s.%N)
    python3 -c "print('%.3f -' % (($end - $start) / $RUNS))"
  fi
}

{
  echo "# kiln eval vs nix-instantiate --eval ($(date -u +%FT%TZ), $(nproc) cores, runs=$RUNS)"
  echo
  echo "| case | kiln wall s | nix wall s | wall ratio | kiln cpu s | nix cpu s | cpu ratio | kiln peak KB | nix peak KB |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for name in "${CASES[@]}"; do
    expr=$(case_expr "$name")
    printf '%s' "$expr" > "$WORK/$name.nix"
    k_out=$("$KILN" eval "$WORK/$name.nix")
    read -r k_time k_cpu <<<"$(mean_s "$KILN eval $WORK/$name.nix")"
    k_mem=$(peak_kb "$KILN" eval "$WORK/$name.nix")
    if [[ $HAVE_NIX == 1 ]]; then
      n_out=$(nix-instantiate --eval "$WORK/$name.nix")
      [[ "$k_out" == "$n_out" ]] || echo "WARNING: $name: kiln printed $k_out, nix printed $n_out" >&2
      read -r n_time n_cpu <<<"$(mean_s "nix-instantiate --eval $WORK/$name.nix")"
      n_mem=$(peak_kb nix-instantiate --eval "$WORK/$name.nix")
      ratio=$(python3 -c "print('%.2f' % ($k_time / $n_time))")
      cpu_ratio=$(python3 -c "print('%.2f' % ($k_cpu / $n_cpu))" 2>/dev/null || echo -)
    else
      n_time="-"; n_cpu="-"; n_mem="-"; ratio="-"; cpu_ratio="-"
    fi
    echo "| $name | $k_time | $n_time | $ratio | $k_cpu | $n_cpu | $cpu_ratio | $k_mem | $n_mem |"
  done
} | tee "$REPORT"
echo "written to $REPORT"
