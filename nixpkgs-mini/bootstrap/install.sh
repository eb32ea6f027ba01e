#!@shell@
# install: the subset of coreutils' install that Makefiles and configure
# scripts use (busybox has none): install [-cpsDv] [-m MODE] [-o U] [-g G]
# SRC... DEST, install -d [-m MODE] DIR..., install -t DIR SRC...
# -o/-g are accepted and ignored (a build owns its files), -s is ignored
# (binaries are stripped at link time).
set -e
mode=755 dirs= lead= target=
while [ $# -gt 0 ]; do
  case "$1" in
    -d|--directory) dirs=1 ;;
    -D) lead=1 ;;
    -m) mode=$2; shift ;;
    -m*) mode=${1#-m} ;;
    --mode=*) mode=${1#--mode=} ;;
    -o|-g|--owner|--group) shift ;;
    -o*|-g*|--owner=*|--group=*) ;;
    -t) target=$2; shift ;;
    --target-directory=*) target=${1#--target-directory=} ;;
    -c|-p|-s|-v|-C|--strip|--preserve-timestamps|--compare|--verbose) ;;
    --) shift; break ;;
    -*) echo "install: unsupported option $1" >&2; exit 1 ;;
    *) break ;;
  esac
  shift
done
if [ -n "$dirs" ]; then
  for d in "$@"; do mkdir -p "$d"; chmod "$mode" "$d"; done
  exit 0
fi
if [ -z "$target" ]; then
  [ $# -ge 2 ] || { echo "install: missing destination" >&2; exit 1; }
  for last in "$@"; do :; done
  if [ $# -eq 2 ] && [ ! -d "$last" ]; then
    [ -n "$lead" ] && mkdir -p "$(dirname "$last")"
    rm -f "$last"
    cp "$1" "$last"
    chmod "$mode" "$last"
    exit 0
  fi
  target=$last
  n=$(($# - 1))
  set -- $(i=0; for a in "$@"; do i=$((i + 1)); [ $i -le $n ] && printf '%s\n' "$a"; done)
fi
[ -n "$lead" ] && mkdir -p "$target"
for f in "$@"; do
  dst="$target/$(basename "$f")"
  rm -f "$dst"
  cp "$f" "$dst"
  chmod "$mode" "$dst"
done
