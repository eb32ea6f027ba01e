# stdenv.mkDerivation: Nix's phase model in busybox sh, with zig cc.
{ seed, bootstrap }:
let
  inherit (bootstrap) busybox zig-libc cc-wrapper untar;
  shell = "${busybox}/bin/sh";
  defaultMake = bootstrap.make;

  mkDerivation =
    { name ? "${args.pname}-${args.version}"
    , outputs ? [ "out" ]
    , buildInputs ? [ ]
    , nativeBuildInputs ? [ ]
    , meta ? { }
    , passthru ? { }
    , make ? defaultMake
    , doCheck ? false
    , ...
    }@args:
    let
      attrs = removeAttrs args [ "meta" "passthru" "make" "pname" "version" ];
      drv = derivation (attrs // {
        inherit name outputs shell;
        system = "x86_64-linux";
        builder = shell;
        args = [ "-e" ./setup.sh ];
        stdenvInputs = [ make cc-wrapper untar busybox ];
        zigLibc = zig-libc;
        buildInputs = map (p: p.dev or p) buildInputs;
        nativeBuildInputs = nativeBuildInputs;
        doCheck = if doCheck then "1" else "";
        # configure scripts and make run /bin/sh: the seed's busybox.
        __sandboxPaths = "/bin/sh=${seed.busybox}/bin/busybox";
      });
      withOutputs = drv // builtins.listToAttrs (map (o: { name = o; value = drv.${o} // { inherit meta; }; }) outputs);
    in
    withOutputs // passthru // { inherit meta passthru; } // (if args ? pname then { inherit (args) pname version; } else { });
in {
  inherit mkDerivation shell busybox;
  cc = cc-wrapper;
}
