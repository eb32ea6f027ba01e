#!/usr/bin/env bash
# Binary cache bench: push a >=400 MB closure to nginx (WebDAV PUT) on
# loopback, then substitute it into an empty store with kiln and with
# Nix 2.8 from the same cache. Wall time and peak RSS by /usr/bin/time.
#
#   bench/cache/run.sh [SIZE_MB]     (default 480)
#
# The closure: 40 paths (`kiln store add`) of SIZE_MB/40 MiB each, half
# compressible (a repeated random MiB between fresh random MiBs), pushed
# and fetched as one list of paths. KILN_CONF=FILE passes kiln settings
# (e.g. `http-connections = 4`). Results: bench/runs/<date>-<host>/cache.txt
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mb=${1:-480}
kiln=${KILN:-target/release/kiln}
[ -x "$kiln" ] || cargo build --release
work=$(mktemp -d /tmp/kiln-bench-cache.XXXXXX)
trap 'kill $(cat "$work/nginx/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
out_dir=bench/runs/$(date -u +%Y-%m-%d)-$(hostname)
mkdir -p "$out_dir"
out=$out_dir/cache.txt

# nginx, foreground-less (daemon off, backgrounded here), private config.
mkdir -p "$work/nginx/www" "$work/nginx/tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
d=$work/nginx
cat > "$d/nginx.conf" <<NGINX
daemon off; master_process off; pid $d/nginx.pid; error_log $d/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path $d/tmp; proxy_temp_path $d/tmp;
  fastcgi_temp_path $d/tmp; uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
  server { listen 127.0.0.1:$port; root $d/www; client_max_body_size 0;
    location / { dav_methods PUT; create_full_put_path on; } } }
NGINX
nginx -c "$d/nginx.conf" -p "$d" & sleep 1
url=http://127.0.0.1:$port/cache

export KILN_STORE_DIR=/nix/store NIX_REMOTE=
per=$((size_mb / 40))
python3 - "$work/src" "$per" <<'PY'
import os, sys, random
root, per = sys.argv[1], int(sys.argv[2])
random.seed(1)
block = random.randbytes(1 << 20)
for i in range(40):
    d = os.path.join(root, f"p{i:02}")
    os.makedirs(d)
    with open(os.path.join(d, "data"), "wb") as f:
        for j in range(per):
            f.write(block if j % 2 else random.randbytes(1 << 20))
    with open(os.path.join(d, "small"), "w") as f:
        f.write(f"{i}\n")
PY
paths=()
for i in $(seq -w 0 39); do
  paths+=("$(KILN_ROOT=$work/src-root "$kiln" store add "$work/src/p$i")")
done
KILN_ROOT=$work/src-root "$kiln" key generate bench-1 --out-dir "$work" >/dev/null 2>&1
pub=$(cat "$work/bench-1.pub")
total=$(KILN_ROOT=$work/src-root "$kiln" store path-info --size "${paths[@]}" | awk '{s+=$2} END {print s}')

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  read -r wall rss < "$work/time"
  printf '%-28s wall %7.2f s   peak RSS %7.1f MiB\n' "$label" "$wall" "$(echo "$rss/1024" | bc -l)" | tee -a "$out"
}

{
  echo "== bench/cache $(date -u +%FT%TZ) on $(hostname), $(nproc) cores"
  echo "closure: ${#paths[@]} paths, $((total / 1048576)) MiB of NAR"
} | tee -a "$out"
measure "kiln push (zstd) -> nginx" env KILN_ROOT="$work/src-root" "$kiln" cache push "$url" "${paths[@]}" --key-file "$work/bench-1.sec"
measure "kiln fetch <- nginx" env KILN_ROOT="$work/kiln-dest" "$kiln" cache fetch "${paths[@]}" --substituters "$url" --trusted-public-keys "$pub"
mkdir -p "$work/nix-home"
measure "nix-store -r <- nginx" env HOME="$work/nix-home" XDG_CACHE_HOME="$work/nix-home/.cache" \
  nix-store --store "$work/nix-dest" -r "${paths[@]}" --option substituters "$url" --option trusted-public-keys "$pub"
# Same NAR hashes on both sides.
for p in "${paths[0]}" "${paths[39]}"; do
  a=$(nix-store --store "$work/nix-dest" -q --hash "$p")
  b=$(KILN_ROOT=$work/kiln-dest "$kiln" store path-info --json "$p" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["narHash"])')
  echo "$p nix=$a kiln=$b" | tee -a "$out"
done
