#!/usr/bin/env bash
# Parse benchmark, side by side with Nix: `kiln parse` (whole process) vs
# `nix-instantiate --parse` on a generated nixpkgs-like file (default 5 MB).
#
#   lang/bench/parse_vs_nix.sh [SIZE_BYTES]
#
# Needs a release build (`cargo build --release`) and, for the comparison,
# `nix-instantiate` on PATH (run with NIX_REMOTE empty: the local store).
# Uses hyperfine when installed, else takes the best of 5 runs with
# /usr/bin/time. Prints wall time, user+sys time and peak RSS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kiln="$root/target/release/kiln"
size=${1:-5242880}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/gen_parse_input.py" "$size" > "$work/big.nix"
echo "input: $(wc -c < "$work/big.nix") bytes, $(wc -l < "$work/big.nix") lines"
[ -x "$kiln" ] || { echo "build first: cargo build --release" >&2; exit 1; }
export NIX_REMOTE=
cmds=("$kiln parse --check $work/big.nix" "$kiln parse $work/big.nix")
if command -v nix-instantiate > /dev/null; then
    cmds+=("nix-instantiate --parse $work/big.nix")
else
    echo "skipped: nix-instantiate not installed (kiln only)"
fi
if command -v hyperfine > /dev/null; then
    hyperfine -N -w 2 -r 15 --output=null "${cmds[@]}"
fi
for c in "${cmds[@]}"; do
    best=""
    for _ in 1 2 3 4 5; do
        line=$( { /usr/bin/time -f "%e %U %S %M" $c > /dev/null; } 2>&1 | tail -1)
        if [ -z "$best" ] || awk -v a="$line" -v b="$best" 'BEGIN{split(a,x," ");split(b,y," ");exit !(x[1]<y[1])}'; then
            best=$line
        fi
    done
    read -r wall user sys rss <<< "$best"
    printf '%-60s wall %6ss  user+sys %6ss  peak %7s KiB\n' "${c/$work\//}" "$wall" \
        "$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')" "$rss"
done
