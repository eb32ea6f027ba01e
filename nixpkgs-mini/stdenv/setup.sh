# stdenv's setup, sourced by busybox sh (the builder, or a development
# shell: `. $stdenv/setup`). Nix's phase model: genericBuild runs
#   $prePhases unpackPhase patchPhase $preConfigurePhases configurePhase
#   $preBuildPhases buildPhase checkPhase $preInstallPhases installPhase
#   $preFixupPhases fixupPhase installCheckPhase $postPhases
# (or $phases). Each phase can be replaced by a variable of its name
# ($configurePhase), skipped ($dontConfigure, $dontBuild, ...; check and
# installCheck run only with $doCheck / $doInstallCheck), and has pre/post
# hooks ($preConfigure, $postConfigure) that are shell text or functions.
# @...@ are filled in when the stdenv is built.

initialPath="@initialPath@"
shell="@shell@"
AR="@ar@"
RANLIB="@ranlib@"
export AR RANLIB shell

# PATH, include and library paths from the inputs, as Nix's setup and
# cc-wrapper do: bin/ on PATH, include/ in NIX_CFLAGS_COMPILE, lib/ in
# NIX_LDFLAGS (the cc wrapper adds both to every compile and link), and
# each input's nix-support/setup-hook sourced.
PATH=
NIX_CFLAGS_COMPILE=${NIX_CFLAGS_COMPILE:-}
NIX_LDFLAGS=${NIX_LDFLAGS:-}
addToSearchPath() { # addToSearchPath VAR DIR
  [ -d "$2" ] || return 0
  eval "$1=\${$1:+\$$1:}\$2"
}
addInput() {
  case " $_addedInputs " in *" $1 "*) return 0 ;; esac
  _addedInputs="$_addedInputs $1"
  addToSearchPath PATH "$1/bin"
  if [ -d "$1/include" ]; then NIX_CFLAGS_COMPILE="$NIX_CFLAGS_COMPILE -isystem $1/include"; fi
  if [ -d "$1/lib" ]; then NIX_LDFLAGS="$NIX_LDFLAGS -L$1/lib"; fi
  if [ -f "$1/nix-support/setup-hook" ]; then . "$1/nix-support/setup-hook"; fi
  return 0
}
_addedInputs=
for _p in ${nativeBuildInputs:-} ${buildInputs:-} $initialPath; do addInput "$_p"; done
unset _p
export PATH NIX_CFLAGS_COMPILE NIX_LDFLAGS
export CC=cc CXX=c++ LD=ld
: "${NIX_BUILD_TOP:=$PWD}" "${NIX_BUILD_CORES:=1}"
# Determinism: a fixed clock (1980-01-01, as nixpkgs), locale and zone.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800} TZ=UTC LC_ALL=C
# zig's global cache: /build/zig-cache, started by the cc wrapper from
# the libc cache the bootstrap built once.

# runHook NAME: run the hook NAME, a function or shell text in $NAME.
runHook() {
  if [ "$(type "$1" 2>/dev/null | head -1)" = "$1 is a function" ]; then
    "$1"
  else
    eval "_hook=\${$1:-}"
    eval "$_hook"
  fi
}

echoCmd() { printf '%s:' "$1"; shift; printf ' %s' "$@"; echo; }

# A store path's name without its hash: /kiln/store/abc…-foo -> foo.
stripHash() {
  _b=$(basename "$1")
  case "$_b" in ????????????????????????????????-*) echo "${_b#*-}" ;; *) echo "$_b" ;; esac
}

unpackFile() {
  echo "unpacking source archive $1"
  case "$1" in
    *.tar.gz|*.tgz) gzip -dc "$1" | untar ;;
    *.tar.xz|*.txz) xz -dc "$1" | untar ;;
    *.tar.bz2|*.tbz2) bzip2 -dc "$1" | untar ;;
    *.tar) untar <"$1" ;;
    *.zip) unzip -q "$1" ;;
    *)
      if [ -d "$1" ]; then
        _d=$(stripHash "$1")
        cp -r "$1" "$_d"
        chmod -R u+w "$_d"
      else
        echo "unpack: do not know how to unpack $1 (a .tar, .tar.gz, .tar.xz, .tar.bz2, .zip or a directory)" >&2
        return 1
      fi
      ;;
  esac
}

unpackPhase() {
  runHook preUnpack
  if [ -z "${srcs:-${src:-}}" ]; then
    echo "unpackPhase: neither \$src nor \$srcs is set (set dontUnpack = true to build without a source)" >&2
    return 1
  fi
  _before=$(ls -A)
  for _s in ${srcs:-$src}; do unpackFile "$_s"; done
  if [ -z "${sourceRoot:-}" ]; then
    for _d in $(ls -A); do
      case " $(echo $_before) " in *" $_d "*) continue ;; esac
      [ -d "$_d" ] || continue
      if [ -n "${sourceRoot:-}" ]; then
        echo "unpackPhase: more than one directory unpacked ($sourceRoot, $_d): set sourceRoot" >&2
        return 1
      fi
      sourceRoot=$_d
    done
  fi
  if [ -z "${sourceRoot:-}" ]; then
    echo "unpackPhase: the source unpacked no directory: set sourceRoot" >&2
    return 1
  fi
  chmod -R u+w "$sourceRoot"
  runHook postUnpack
}

patchPhase() {
  runHook prePatch
  for _p in ${patches:-}; do
    echo "applying patch $_p"
    case "$_p" in
      *.gz) gzip -dc "$_p" | patch ${patchFlags:--p1} ;;
      *.xz) xz -dc "$_p" | patch ${patchFlags:--p1} ;;
      *) patch ${patchFlags:--p1} <"$_p" ;;
    esac
  done
  runHook postPatch
}

# Where configure should put what, when those outputs exist (as Nix's
# multiple-outputs setup does; setOutputFlags = false turns it off).
outputFlags() {
  [ "${setOutputFlags-1}" = 1 ] || return 0
  if [ -n "${dev:-}" ]; then echo "--includedir=$dev/include"; fi
  if [ -n "${doc:-}" ]; then echo "--docdir=$doc/share/doc/${pname:-$name} --mandir=$doc/share/man --infodir=$doc/share/info"; fi
  return 0
}

configurePhase() {
  runHook preConfigure
  : "${configureScript:=}"
  if [ -z "$configureScript" ] && [ -x ./configure ]; then configureScript=./configure; fi
  if [ -n "$configureScript" ]; then
    _flags=
    [ -n "${dontAddPrefix:-}" ] || _flags="${prefixKey:---prefix=}$prefix"
    [ -n "${dontAddDisableDepTrack:-}" ] || ! grep -q dependency-tracking "$configureScript" || _flags="$_flags --disable-dependency-tracking"
    echoCmd 'configure flags' $_flags $(outputFlags) ${configureFlags:-}
    $configureScript $_flags $(outputFlags) ${configureFlags:-}
  else
    echo "no configure script, doing nothing"
  fi
  runHook postConfigure
}

_jobs() {
  if [ -n "${enableParallelBuilding:-}" ]; then echo "-j$NIX_BUILD_CORES"; else echo "-j1"; fi
}

_hasMakefile() {
  [ -n "${makefile:-}" ] || [ -f Makefile ] || [ -f makefile ] || [ -f GNUmakefile ]
}

buildPhase() {
  runHook preBuild
  if _hasMakefile; then
    echoCmd 'build flags' $(_jobs) ${makefile:+-f $makefile} ${makeFlags:-} ${buildFlags:-}
    make $(_jobs) ${makefile:+-f $makefile} ${makeFlags:-} ${buildFlags:-}
  else
    echo "no Makefile, doing nothing"
  fi
  runHook postBuild
}

checkPhase() {
  runHook preCheck
  if [ -z "${checkTarget:-}" ]; then
    if make -n ${makefile:+-f $makefile} check >/dev/null 2>&1; then checkTarget=check
    elif make -n ${makefile:+-f $makefile} test >/dev/null 2>&1; then checkTarget=test
    fi
  fi
  if [ -n "${checkTarget:-}" ]; then
    echoCmd 'check flags' $(_jobs) ${makeFlags:-} ${checkFlags:-} $checkTarget
    make $(_jobs) ${makefile:+-f $makefile} ${makeFlags:-} ${checkFlags:-} $checkTarget
  else
    echo "no check or test target in the Makefile, doing nothing"
  fi
  runHook postCheck
}

installPhase() {
  runHook preInstall
  mkdir -p "$prefix"
  echoCmd 'install flags' ${makeFlags:-} ${installFlags:-} ${installTargets:-install}
  make ${makefile:+-f $makefile} ${makeFlags:-} ${installFlags:-} ${installTargets:-install}
  runHook postInstall
}

installCheckPhase() {
  runHook preInstallCheck
  make ${makefile:+-f $makefile} ${makeFlags:-} ${installCheckFlags:-} ${installCheckTarget:-installcheck}
  runHook postInstallCheck
}

# patchShebangs DIR...: an executable script's #!/bin/sh, #!/bin/bash or
# #!/usr/bin/env PROG becomes the store path of that program (sh and bash
# are the seed's busybox sh; others are looked up on PATH).
patchShebangs() {
  find "$@" -type f -perm -0100 | sort | while read -r f; do
    [ "$(head -c2 "$f")" = "#!" ] || continue
    first=$(head -n1 "$f")
    interp=${first#??}
    interp=${interp# }
    args=${interp#* }
    [ "$args" = "$interp" ] && args=
    interp=${interp%% *}
    case "$interp" in
      "$NIX_STORE"/*) continue ;;
      /usr/bin/env) prog=${args%% *}; args=${args#"$prog"}; args=${args# } ;;
      *) prog=$(basename "$interp") ;;
    esac
    case "$prog" in
      sh|bash|ash) new=$shell ;;
      *) new=$(command -v "$prog" || true) ;;
    esac
    case "$new" in
      /*) ;;
      *) echo "patchShebangs: $f: $prog not found on PATH, leaving $first" >&2; continue ;;
    esac
    echo "patching script interpreter paths in $f: $first -> #!$new${args:+ $args}"
    _mode=$(stat -c %a "$f")
    { echo "#!$new${args:+ $args}"; tail -n +2 "$f"; } >"$f.patched"
    chmod "$_mode" "$f.patched"
    mv "$f.patched" "$f"
  done
}

# moveToOutput PATH OUTPUTDIR: move $prefix/PATH into another output.
moveToOutput() {
  _src="$prefix/$1" _dst="$2/$1"
  [ -e "$_src" ] || return 0
  [ "$_src" = "$_dst" ] && return 0
  mkdir -p "$(dirname "$_dst")"
  if [ -d "$_dst" ]; then
    (cd "$_src" && find . ! -type d) | while read -r _f; do
      mkdir -p "$(dirname "$_dst/$_f")"
      mv "$_src/$_f" "$_dst/$_f"
    done
    rm -rf "$_src"
  else
    mv "$_src" "$_dst"
  fi
  rmdir "$(dirname "$_src")" 2>/dev/null || true
}

# Multiple outputs: headers and pkg-config files go to $dev, manuals to
# $doc, as Nix's multiple-outputs.sh does (when those outputs exist).
_multioutMove() {
  if [ -n "${dev:-}" ]; then
    moveToOutput include "$dev"
    moveToOutput lib/pkgconfig "$dev"
    moveToOutput share/pkgconfig "$dev"
    moveToOutput share/aclocal "$dev"
  fi
  if [ -n "${doc:-}" ]; then
    moveToOutput share/doc "$doc"
    moveToOutput share/man "$doc"
    moveToOutput share/info "$doc"
  fi
  return 0
}

fixupPhase() {
  runHook preFixup
  [ -n "${dontMoveOutputs:-}" ] || _multioutMove
  for _o in $outputs; do
    eval "_d=\$$_o"
    [ -d "$_d" ] || continue
    # Static archives: rebuilt deterministically (zero dates, uids, modes).
    if [ -z "${dontStrip:-}" ]; then
      find "$_d" -name '*.a' -type f | sort | while read -r _a; do "$RANLIB" -D "$_a"; done
    fi
    [ -n "${dontPatchShebangs:-}" ] || patchShebangs "$_d"
    # No build paths in outputs.
    if [ -z "${allowBuildPaths:-}" ] && grep -rlF "$NIX_BUILD_TOP/" "$_d" >/dev/null 2>&1; then
      echo "fixupPhase: these files of $_o refer to the build directory $NIX_BUILD_TOP:" >&2
      grep -rlF "$NIX_BUILD_TOP/" "$_d" >&2
      echo "(fix the package, or set allowBuildPaths = true)" >&2
      return 1
    fi
  done
  runHook postFixup
}

genericBuild() {
  if [ -f "${buildCommandPath:-}" ]; then
    . "$buildCommandPath"
    return
  fi
  if [ -n "${buildCommand:-}" ]; then
    eval "$buildCommand"
    return
  fi
  : "${phases:=${prePhases:-} unpackPhase patchPhase ${preConfigurePhases:-} configurePhase ${preBuildPhases:-} buildPhase checkPhase ${preInstallPhases:-} installPhase ${preFixupPhases:-} fixupPhase installCheckPhase ${postPhases:-}}"
  for curPhase in $phases; do
    case "$curPhase" in
      unpackPhase) [ -z "${dontUnpack:-}" ] || continue ;;
      patchPhase) [ -z "${dontPatch:-}" ] || continue ;;
      configurePhase) [ -z "${dontConfigure:-}" ] || continue ;;
      buildPhase) [ -z "${dontBuild:-}" ] || continue ;;
      checkPhase) [ -n "${doCheck:-}" ] || continue ;;
      installPhase) [ -z "${dontInstall:-}" ] || continue ;;
      fixupPhase) [ -z "${dontFixup:-}" ] || continue ;;
      installCheckPhase) [ -n "${doInstallCheck:-}" ] || continue ;;
    esac
    echo "@phase $curPhase"
    eval "_custom=\${$curPhase:-}"
    if [ -n "$_custom" ]; then eval "$_custom"; else "$curPhase"; fi
    # The unpack phase ends in the source root.
    if [ "$curPhase" = unpackPhase ]; then cd "${sourceRoot:-.}"; fi
  done
}

: "${outputs:=out}"
: "${prefix:=${out:-}}"
