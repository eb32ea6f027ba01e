# Trivial builders: files and scripts written at build time, commands run
# with busybox, directories of links.
{ stdenv, bootstrap }:
let
  inherit (stdenv) shell busybox;
  system = "x86_64-linux";
  run = name: env: script: derivation ({
    inherit name system;
    builder = shell;
    args = [ "-euc" script ];
    PATH = "${busybox}/bin";
  } // env);
in rec {
  runCommand = name: env: script: run name (removeAttrs env [ "meta" "passthru" ]) script
    // { meta = env.meta or { }; };

  writeText = name: text: run name { inherit text; passAsFile = [ "text" ]; } ''
    cp "$textPath" "$out"
  '';

  writeShellScript = name: text: run name { inherit text; passAsFile = [ "text" ]; } ''
    { echo "#!${shell}"; cat "$textPath"; } > "$out"
    chmod 555 "$out"
  '';

  writeShellScriptBin = name: text: run name { inherit text; passAsFile = [ "text" ]; } ''
    mkdir -p "$out/bin"
    { echo "#!${shell}"; cat "$textPath"; } > "$out/bin/${name}"
    chmod 555 "$out/bin/${name}"
  '';

  symlinkJoin = { name, paths, meta ? { } }: run name { inherit paths; } ''
    mkdir -p "$out"
    for p in $paths; do
      (cd "$p" && find . ! -type d) | while read -r f; do
        mkdir -p "$out/$(dirname "$f")"
        ln -sf "$p/$f" "$out/$f"
      done
    done
  '' // { inherit meta; };

  # A development environment: `kiln shell` (or nix-shell) gives the
  # builder's environment with these inputs; building it records them.
  mkShell = { name ? "shell", packages ? [ ], buildInputs ? [ ], shellHook ? "", meta ? { } }:
    stdenv.mkDerivation {
      inherit name shellHook meta;
      buildInputs = packages ++ buildInputs;
      phases = [ "installPhase" ];
      installPhase = ''
        echo "$PATH" > $out
        echo "$CFLAGS $LDFLAGS" >> $out
      '';
    };
}
