#!/usr/bin/env bash
# bench/bundle: export and import of a >= 400 MB closure, kiln bundles
# beside Nix 2.8's `nix-store --export … | zstd -T0` and
# `zstd -d | nix-store --import`. Wall time and peak RSS by /usr/bin/time;
# file sizes by stat. The closure: the seed toolchain (the ziglang wheel of
# nixpkgs-mini's lock, unpacked: ~411 MB) plus busybox and the wheel itself (~101 MB): ~483 MB of NARs.
#
#   bench/bundle/run.sh [WORKDIR]     (needs target/release/kiln, nix-store, zstd)
#
# Each import goes into a fresh root / fresh Nix store (a chroot store under
# WORKDIR), so nothing already valid is skipped. Runs 3 times; prints one
# line per run and tool.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
kiln=${KILN:-$here/target/release/kiln}
w=${1:-$(mktemp -d /tmp/kiln-bench-bundle.XXXXXX)}
wheel=${KILN_SEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/seed}/ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl
export NIX_REMOTE=
nixopts=(--option substituters '' --option build-users-group '')
mkdir -p "$w"
if [ ! -d "$w/zig" ]; then
  [ -f "$wheel" ] || { echo "no $wheel: run nixpkgs-mini/seed/fetch --only-cache" >&2; exit 1; }
  python3 -m zipfile -e "$wheel" "$w/zig"
  mkdir -p "$w/busybox/bin" && cp /bin/busybox "$w/busybox/bin/"
fi

measure() { # LABEL CMD… : prints wall time, CPU time (user+sys), peak RSS
  local label=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$w/time" "$@"
  read -r wall rss user sys < "$w/time"
  printf '%-12s %7.2f s wall  %6.2f s cpu  %4d MB peak RSS\n' "$label" "$wall" "$(awk "BEGIN { print $user + $sys }")" $((rss / 1024))
}

# Source stores.
export KILN_ROOT=$w/kiln-src
zig=$($kiln store add "$w/zig")
bb=$($kiln store add "$w/busybox")
whl=$($kiln store add "$wheel")
[ -f "$w/k.sec" ] || $kiln key generate k --out-dir "$w" 2>/dev/null
nsrc="local?root=$w/nix-src"
nzig=$(nix-store --store "$nsrc" "${nixopts[@]}" --add "$w/zig")
nbb=$(nix-store --store "$nsrc" "${nixopts[@]}" --add "$w/busybox")
nwhl=$(nix-store --store "$nsrc" "${nixopts[@]}" --add "$wheel")
echo "closure: $($kiln store path-info -s "$zig" "$bb" "$whl" | awk '{s+=$2} END {print s}') NAR bytes in 3 paths"

for run in 1 2 3; do
  echo "-- run $run"
  rm -f "$w/k.bundle" "$w/nix.zst"
  measure "kiln export" "$kiln" bundle export "$zig" "$bb" "$whl" -o "$w/k.bundle" --sign-key "$w/k.sec" -q
  measure "nix export" sh -c "nix-store --store '$nsrc' ${nixopts[*]@Q} --export \$(nix-store --store '$nsrc' -qR '$nzig' '$nbb' '$nwhl') | zstd -T0 -q > '$w/nix.zst'"
  rm -rf "$w/kiln-dst" "$w/nix-dst"
  measure "kiln import" env KILN_ROOT="$w/kiln-dst" "$kiln" bundle import "$w/k.bundle" --key "$w/k.pub" -q
  measure "nix import" sh -c "zstd -d -q < '$w/nix.zst' | nix-store --store 'local?root=$w/nix-dst' ${nixopts[*]@Q} --import > /dev/null"
done
echo "sizes: kiln bundle $(stat -c %s "$w/k.bundle") bytes, nix export | zstd -T0 $(stat -c %s "$w/nix.zst") bytes"
