# From the seed to a working toolchain: busybox applets, zig, zig's libc
# build (once, shared by every C build), the stage-0 unpacker, and GNU make
# from its own bootstrap script.
{ seed }:
let
  system = "x86_64-linux";
  bb = "${seed.busybox}/bin/busybox";

  run = name: script: extra: derivation ({
    inherit name system;
    builder = bb;
    args = [ "sh" "-euc" script ];
    __sandboxPaths = "/bin/sh=${bb}";
  } // extra);
in rec {
  # Every busybox applet as a symlink: the PATH of every build.
  busybox = run "busybox-1.35.0" ''
    ${bb} mkdir -p $out/bin
    for a in $(${bb} --list); do ${bb} ln -s ${bb} $out/bin/$a; done
  '' { };

  # The Zig toolchain out of its wheel.
  zig = run "zig-0.17.1" ''
    export PATH=${busybox}/bin
    mkdir -p $out/bin
    unzip -q ${seed.ziglang} 'ziglang/*' -d $out
    ln -s ../ziglang/zig $out/bin/zig
  '' { };

  # cc, ld, ar, ranlib for configure scripts: zig, always static musl.
  # busybox sh runs its own applets before searching PATH, so `ar` in a
  # script is busybox's (which cannot create archives): builds name this
  # one by its absolute path (AR=${cc-wrapper}/bin/ar).
  cc-wrapper = run "zig-cc-wrapper" ''
    export PATH=${busybox}/bin
    mkdir -p $out/bin
    cc() { sed -e "s|@shell@|${busybox}/bin/sh|" -e "s|@zig@|${zig}/bin/zig|" -e "s|@zigLibc@|${zig-libc}|" \
      -e "s|@mode@|$2|" -e "s|@name@|$1|" ${./cc-wrapper.sh} > $out/bin/$1; chmod 555 $out/bin/$1; }
    cc cc cc; cc gcc cc; cc c++ c++; cc g++ c++
    tool() {
      printf '#!%s\n: "''${ZIG_GLOBAL_CACHE_DIR:=''${NIX_BUILD_TOP:-''${TMPDIR:-/tmp}}/zig-cache}"\nexport ZIG_GLOBAL_CACHE_DIR\nexec %s %s "$@"\n' \
        ${busybox}/bin/sh ${zig}/bin/zig "$2" > $out/bin/$1
      chmod 555 $out/bin/$1
    }
    tool ld ld.lld; tool ar ar; tool ranlib ranlib
  '' { };

  # coreutils' install, the part Makefiles use (busybox has none).
  install = run "install-sh-mini" ''
    export PATH=${busybox}/bin
    mkdir -p $out/bin
    sed -e "s|@shell@|${busybox}/bin/sh|" ${./install.sh} > $out/bin/install
    chmod 555 $out/bin/install
  '' { };

  # Zig builds musl and compiler-rt the first time it links for a target:
  # once here, then each build starts from a copy of this cache.
  zig-libc = run "zig-libc-cache" ''
    export PATH=${busybox}/bin
    export ZIG_GLOBAL_CACHE_DIR=/build/zig-cache
    echo 'int main(void) { return 0; }' > t.c
    ${zig}/bin/zig cc -target x86_64-linux-musl -O2 t.c -o t
    ./t
    rm -rf zig-cache/tmp
    cp -r zig-cache $out
  '' { };

  # Stage-0 unpacker (busybox tar refuses V7 headers).
  untar = run "untar" ''
    export PATH=${busybox}/bin
    mkdir -p $out/bin
    ${cc-wrapper}/bin/cc -O2 ${./untar.c} -o $out/bin/untar
  '' { };

  # GNU make, built by its build.sh (no make needed).
  make = run "make-boot-4.4.1" ''
    export PATH=${cc-wrapper}/bin:${untar}/bin:${busybox}/bin
    export SOURCE_DATE_EPOCH=315532800
    xz -dc ${seed.sources.make} | untar
    cd make-4.4.1
    # Debian's repack has no doc/, but configure lists doc/Makefile.
    mkdir -p doc && touch doc/Makefile.in
    ./configure --prefix=$out --disable-dependency-tracking --disable-nls \
      CC=cc LD=ld AR=${cc-wrapper}/bin/ar RANLIB=${cc-wrapper}/bin/ranlib CFLAGS=-O2
    sh build.sh
    mkdir -p $out/bin
    cp make $out/bin/make
  '' { };
}
