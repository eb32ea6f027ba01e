# stdenv's builder, run by busybox sh: Nix's phase model.
# Phases: unpack patch configure build check install fixup (or $phases);
# each can be replaced ($configurePhase), skipped ($dontConfigure) and has
# pre/post hooks ($preConfigure, $postConfigure).
set -eu

# PATH, include and library paths from the inputs (and their dev outputs).
PATH=
addInput() {
  [ -d "$1/bin" ] && PATH="${PATH:+$PATH:}$1/bin"
  [ -d "$1/include" ] && NIX_CFLAGS="${NIX_CFLAGS:-} -I$1/include"
  [ -d "$1/lib" ] && NIX_LDFLAGS="${NIX_LDFLAGS:-} -L$1/lib"
  return 0
}
for p in ${nativeBuildInputs:-} ${buildInputs:-} $stdenvInputs; do addInput "$p"; done
export PATH
export CFLAGS="${CFLAGS:--O2} ${NIX_CFLAGS:-}"
export LDFLAGS="${LDFLAGS:-} ${NIX_LDFLAGS:-}"
export CC=cc LD=ld AR=ar RANLIB=ranlib
export SOURCE_DATE_EPOCH=1 TZ=UTC LC_ALL=C
export ZIG_GLOBAL_CACHE_DIR=$NIX_BUILD_TOP/.zig-cache
cp -r "$zigLibc" "$ZIG_GLOBAL_CACHE_DIR"
chmod -R u+w "$ZIG_GLOBAL_CACHE_DIR"

runHook() { eval "\${$1:-}"; }

unpackFile() {
  case "$1" in
    *.tar.gz|*.tgz) gzip -dc "$1" | untar ;;
    *.tar.xz) xz -dc "$1" | untar ;;
    *.tar.bz2) bzip2 -dc "$1" | untar ;;
    *.tar) untar < "$1" ;;
    *) if [ -d "$1" ]; then cp -r "$1" .; chmod -R u+w "$(basename "$1")"; else echo "unpack: do not know how to unpack $1" >&2; return 1; fi ;;
  esac
}

unpackPhase() {
  runHook preUnpack
  mkdir -p "$NIX_BUILD_TOP/src" && cd "$NIX_BUILD_TOP/src"
  for s in ${srcs:-$src}; do unpackFile "$s"; done
  if [ -z "${sourceRoot:-}" ]; then
    sourceRoot=$(ls -A | head -1)
    if [ "$(ls -A | wc -l)" != 1 ]; then sourceRoot=.; fi
  fi
  cd "$sourceRoot"
  runHook postUnpack
}

patchPhase() {
  runHook prePatch
  for p in ${patches:-}; do
    echo "applying patch $p"
    patch ${patchFlags:--p1} < "$p"
  done
  runHook postPatch
}

configurePhase() {
  runHook preConfigure
  if [ -x "${configureScript:-./configure}" ]; then
    ${configureScript:-./configure} --prefix="$prefix" ${configureFlags:-}
  else
    echo "no configure script, doing nothing"
  fi
  runHook postConfigure
}

buildPhase() {
  runHook preBuild
  make -j"$NIX_BUILD_CORES" ${makeFlags:-} ${buildFlags:-}
  runHook postBuild
}

checkPhase() {
  runHook preCheck
  make -j"$NIX_BUILD_CORES" ${makeFlags:-} ${checkTarget:-check} ${checkFlags:-}
  runHook postCheck
}

installPhase() {
  runHook preInstall
  make ${makeFlags:-} ${installTargets:-install} ${installFlags:-}
  runHook postInstall
}

# Strip binaries, patch #!/bin/sh-style shebangs to the store's busybox,
# move docs to $doc, headers to $dev when those outputs exist.
patchShebangs() {
  find "$@" -type f -perm -0100 | while read -r f; do
    head -c2 "$f" | grep -q '^#!' || continue
    first=$(head -1 "$f")
    prog=${first#\#!}; prog=${prog# }; prog=${prog%% *}
    case "$prog" in /bin/sh|/bin/bash|/usr/bin/env|/usr/bin/sh) ;; *) continue ;; esac
    rest=${first#*"$prog"}
    if [ "$prog" = /usr/bin/env ]; then prog=${rest# }; prog=${prog%% *}; rest=${rest#*"$prog"}; fi
    case "$prog" in sh|bash|/bin/sh|/bin/bash|/usr/bin/sh) new="$shell" ;; *) continue ;; esac
    echo "patching shebang of $f: $first -> #!$new$rest"
    { echo "#!$new$rest"; tail -n +2 "$f"; } > "$f.tmp"
    chmod --reference="$f" "$f.tmp" 2>/dev/null || chmod 555 "$f.tmp"
    mv "$f.tmp" "$f"
  done
}

moveToOutput() { # moveToOutput DIR OUTPUT
  src="$prefix/$1"; dst="$2/$1"
  [ -e "$src" ] || return 0
  [ "$src" = "$dst" ] && return 0
  mkdir -p "$(dirname "$dst")" && mv "$src" "$dst"
}

fixupPhase() {
  runHook preFixup
  for o in $outputs; do
    eval d="\$$o"
    [ -d "$d" ] || continue
    if [ -z "${dontStrip:-}" ]; then
      find "$d" -type f -perm -0100 | while read -r f; do
        if head -c4 "$f" | grep -q ELF; then strip "$f" "$f.s" && cat "$f.s" > "$f" && rm "$f.s"; fi
      done
      find "$d" -name '*.a' -type f | while read -r f; do ar -D -r "$f" >/dev/null 2>&1 || true; done
    fi
    [ -n "${dontPatchShebangs:-}" ] || patchShebangs "$d"
  done
  if [ -n "${dev:-}" ]; then moveToOutput include "$dev"; moveToOutput lib/pkgconfig "$dev"; fi
  if [ -n "${doc:-}" ]; then moveToOutput share/doc "$doc"; moveToOutput share/man "$doc"; moveToOutput share/info "$doc"; fi
  runHook postFixup
}

prefix=${prefix:-$out}
for o in $outputs; do eval "d=\$$o"; mkdir -p "$d"; done
for phase in ${phases:-unpackPhase patchPhase configurePhase buildPhase checkPhase installPhase fixupPhase}; do
  case "$phase" in
    unpackPhase) [ -z "${dontUnpack:-}" ] || continue ;;
    patchPhase) [ -z "${dontPatch:-}" ] || continue ;;
    configurePhase) [ -z "${dontConfigure:-}" ] || continue ;;
    buildPhase) [ -z "${dontBuild:-}" ] || continue ;;
    checkPhase) [ -n "${doCheck:-}" ] || continue ;;
    installPhase) [ -z "${dontInstall:-}" ] || continue ;;
    fixupPhase) [ -z "${dontFixup:-}" ] || continue ;;
  esac
  echo "@phase $phase"
  eval "custom=\${$phase:-}"
  if [ -n "$custom" ]; then eval "$custom"; else "$phase"; fi
done
