# nixpkgs-mini: a small package set built from real upstream release
# tarballs, bootstrapped from a pinned seed (static busybox + zig cc).
#   kiln build '<nixpkgs-mini>' -A hello
# How to write a package: docs/nixpkgs-mini.md.
let
  seed = import ./seed;
  bootstrap = import ./bootstrap { inherit seed; };
  stdenv = import ./stdenv { inherit seed bootstrap; };
  trivial = import ./stdenv/trivial.nix { inherit stdenv; };
  lib = { licenses = import ./lib/licenses.nix; };

  # callPackage FILE OVERRIDES: call FILE's function with the arguments it
  # names, taken from the package set (then OVERRIDES), as nixpkgs does.
  callPackage = file: overrides:
    let
      f = import file;
      wanted = builtins.functionArgs f;
    in
    f (builtins.intersectAttrs wanted (pkgs // overrides));

  pkgs = trivial // {
    inherit stdenv bootstrap seed lib callPackage;
    inherit (seed) fetchurl;
    sources = seed.sources;

    hello = callPackage ./pkgs/hello.nix { };
    make = callPackage ./pkgs/make.nix { };
    zlib = callPackage ./pkgs/zlib.nix { };
    pigz = callPackage ./pkgs/pigz.nix { };
    zpipe = callPackage ./pkgs/zpipe.nix { };
    bzip2 = callPackage ./pkgs/bzip2.nix { };
    lua = callPackage ./pkgs/lua.nix { };
    xz = callPackage ./pkgs/xz.nix { };
    gzip = callPackage ./pkgs/gzip.nix { };
    tree = callPackage ./pkgs/tree { };
    greet = callPackage ./pkgs/greet { };

    # zlib's two programs agree: pigz compresses, zpipe -d decompresses.
    zlib-roundtrip = pkgs.runCommand "zlib-roundtrip"
      {
        nativeBuildInputs = [ pkgs.pigz pkgs.zpipe ];
        meta = { description = "pigz and zpipe agree on zlib streams"; license = lib.licenses.mitOrApache2; };
      } ''
      seq 1 20000 > data
      pigz -z -c data > data.zz
      zpipe -d < data.zz > back
      cmp data back
      echo "pigz -z | zpipe -d: $(wc -c < data) bytes round-tripped" > $out
    '';

    # A development environment for the C library: `kiln shell -A zlib-shell`.
    zlib-shell = pkgs.mkShell {
      name = "zlib-shell";
      buildInputs = [ pkgs.zlib ];
      packages = [ pkgs.pigz pkgs.make ];
      shellHook = ''echo "zlib $(grep -m1 'define ZLIB_VERSION' ${pkgs.zlib.dev}/include/zlib.h)"'';
      meta = { description = "Build against zlib: headers, library, pigz and make"; license = lib.licenses.mitOrApache2; };
    };

    # The trivial builders, one each.
    motd = (pkgs.writeText "motd" "Built by kiln from nixpkgs-mini.\n") // {
      meta = { description = "A text file"; license = lib.licenses.mitOrApache2; };
    };
    say-hello = (pkgs.writeShellScriptBin "say-hello" ''
      exec ${pkgs.hello}/bin/hello -g "$(cat ${pkgs.motd})"
    '') // { meta = { description = "hello, with the motd"; license = lib.licenses.mitOrApache2; }; };
    tools = pkgs.symlinkJoin {
      name = "nixpkgs-mini-tools";
      paths = [ pkgs.hello pkgs.greet pkgs.tree pkgs.pigz pkgs.lua pkgs.say-hello ];
      meta = { description = "The set's programs in one tree"; license = lib.licenses.mitOrApache2; };
    };
  };
in
pkgs
