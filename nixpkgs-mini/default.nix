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
  };
in
pkgs
