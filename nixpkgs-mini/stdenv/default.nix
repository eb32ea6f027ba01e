# stdenv.mkDerivation: Nix's phase model in busybox sh, with zig cc.
# The builder is busybox sh running default-builder.sh, which sources
# $stdenv/setup (setup.sh with the toolchain's paths filled in) and runs
# genericBuild, as Nix's stdenv does; a development shell sources the same
# setup.
{ seed, bootstrap }:
let
  inherit (bootstrap) busybox cc-wrapper untar install;
  system = "x86_64-linux";
  shell = "${busybox}/bin/sh";
  make = bootstrap.make;
  # Configure scripts and make run /bin/sh: the seed's busybox, bound the
  # way Nix's sandbox-paths does (docs/building.md).
  binSh = "/bin/sh=${seed.busybox}/bin/busybox";
  initialPath = [ cc-wrapper make install untar busybox ];

  # The stdenv's own path: its setup script.
  stdenvDrv = derivation {
    name = "stdenv-mini";
    inherit system;
    builder = shell;
    args = [ "-euc" ''
      export PATH=${busybox}/bin
      mkdir -p $out
      sed -e "s|@initialPath@|${toString initialPath}|" -e "s|@shell@|${shell}|" \
        -e "s|@ar@|${cc-wrapper}/bin/ar|" -e "s|@ranlib@|${cc-wrapper}/bin/ranlib|" \
        ${./setup.sh} > $out/setup
    '' ];
  };

  # A build input stands for the outputs a build uses: dev (headers) and
  # out (libraries, programs).
  inputOutputs = p:
    if builtins.isAttrs p && p ? outPath
    then (if p ? dev then [ p.dev ] else [ ]) ++ [ (p.out or p) ]
    else [ p ];
  expand = builtins.concatMap inputOutputs;

  mkDerivation =
    { name ? "${args.pname}-${args.version}"
    , outputs ? [ "out" ]
    , buildInputs ? [ ]
    , nativeBuildInputs ? [ ]
    , meta ? { }
    , passthru ? { }
    , doCheck ? false
    , enableParallelBuilding ? true
    , ...
    }@args:
    let
      attrs = removeAttrs args [ "meta" "passthru" ];
      drv = derivation (attrs // {
        inherit name outputs system doCheck enableParallelBuilding;
        builder = shell;
        args = [ "-e" ./default-builder.sh ];
        stdenv = stdenvDrv;
        buildInputs = expand buildInputs;
        nativeBuildInputs = expand nativeBuildInputs;
        __sandboxPaths = binSh;
      });
      outputsWithMeta = builtins.listToAttrs (map
        (o: { name = o; value = drv.${o} // { inherit meta passthru; }; })
        outputs);
    in
    drv // outputsWithMeta // passthru // {
      inherit meta passthru;
      overrideAttrs = f: mkDerivation (args // f args);
    };
in {
  inherit mkDerivation shell busybox system binSh initialPath;
  setup = stdenvDrv;
  cc = cc-wrapper;
}
