# nixpkgs-mini: a small package set built from real upstream release
# tarballs, bootstrapped from a pinned seed (static busybox + zig cc).
# `kiln build '<nixpkgs-mini>' -A hello`; docs/nixpkgs-mini.md.
let
  seed = import ./seed;
  bootstrap = import ./bootstrap { inherit seed; };
  stdenv = import ./stdenv { inherit seed bootstrap; };
  trivial = import ./stdenv/trivial.nix { inherit stdenv bootstrap; };
  callPackage = f: import f (pkgs // { inherit seed; });
  pkgs = trivial // {
    inherit stdenv bootstrap seed;
    hello = callPackage ./pkgs/hello.nix;
  };
in pkgs
