#!@shell@
# @name@: zig @mode@, always for static musl. Adds $NIX_CFLAGS_COMPILE to
# every call and $NIX_LDFLAGS to links (the include and library paths of a
# build's inputs, set by stdenv's setup), and maps the build directory out
# of debug info and __FILE__ (no build paths in outputs).
#
# zig builds musl and compiler-rt once per optimize mode, strip setting
# and cache directory: the bootstrap's libc cache holds the -O2 unstripped
# one built in /build/zig-cache, so links here always use it. A link (no
# -c, -S, -E, -M or -MM) gets -O2 when it names no -O (zig would build a
# Debug libc), and is stripped by the linker (-Wl,--strip-all; zig's -s
# would build a stripped libc, and zig's objcopy cannot strip ELF files
# afterwards) unless $dontStrip is set; compiles get -g0 (no debug info)
# unless $dontStrip is set.
# zig needs a writable global cache: the first call of a build starts it
# from a copy of the libc cache the bootstrap built once (a racing second
# copy only leaves a stray subdirectory zig ignores).
: "${ZIG_GLOBAL_CACHE_DIR:=${NIX_BUILD_TOP:-${TMPDIR:-/tmp}}/zig-cache}"
export ZIG_GLOBAL_CACHE_DIR
if [ ! -d "$ZIG_GLOBAL_CACHE_DIR" ]; then
  cp -r @zigLibc@ "$ZIG_GLOBAL_CACHE_DIR.$$"
  chmod -R u+w "$ZIG_GLOBAL_CACHE_DIR.$$"
  mv "$ZIG_GLOBAL_CACHE_DIR.$$" "$ZIG_GLOBAL_CACHE_DIR"
fi
link=1 opt=
for a in "$@"; do
  case "$a" in
    -c|-S|-E|-M|-MM) link= ;;
    -O*) opt=1 ;;
  esac
done
if [ -n "$link" ]; then
  [ -n "$opt" ] || set -- -O2 "$@"
  [ -n "${dontStrip:-}" ] || set -- "$@" -Wl,--strip-all
  set -- "$@" ${NIX_LDFLAGS:-}
elif [ -z "${dontStrip:-}" ]; then
  # Objects without debug info: static archives would otherwise carry
  # line tables naming zig's headers, a reference to the toolchain.
  set -- "$@" -g0
fi
[ -z "${NIX_BUILD_TOP:-}" ] || set -- "-ffile-prefix-map=$NIX_BUILD_TOP/=" "$@"
exec @zig@ @mode@ -target x86_64-linux-musl ${NIX_CFLAGS_COMPILE:-} "$@"
