# Trivial builders, as nixpkgs' build-support/trivial-builders: files and
# scripts written at build time, commands run with the stdenv, directories
# of links, and development shells.
{ stdenv }:
let
  inherit (stdenv) shell;
in rec {
  # runCommand NAME ENV COMMAND: run COMMAND (shell text) with the stdenv's
  # setup (busybox, cc, make on PATH); it writes $out.
  runCommand = name: env: buildCommand:
    stdenv.mkDerivation ({
      inherit name buildCommand;
    } // env // {
      passAsFile = [ "buildCommand" ] ++ (env.passAsFile or [ ]);
    });

  # writeTextFile { name; text; executable ? false; destination ? ""; }
  writeTextFile = { name, text, executable ? false, destination ? "", meta ? { } }:
    runCommand name {
      inherit text executable destination meta;
      passAsFile = [ "text" ];
    } ''
      target="$out$destination"
      mkdir -p "$(dirname "$target")"
      cp "$textPath" "$target"
      if [ -n "$executable" ]; then chmod 555 "$target"; fi
    '';

  writeText = name: text: writeTextFile { inherit name text; };

  writeShellScript = name: text: writeTextFile {
    inherit name;
    executable = true;
    text = ''
      #!${shell}
      ${text}
    '';
  };

  writeShellScriptBin = name: text: writeTextFile {
    inherit name;
    executable = true;
    destination = "/bin/${name}";
    text = ''
      #!${shell}
      ${text}
    '';
  };

  # symlinkJoin { name; paths; }: one tree of links to every file of paths
  # (the first path that has a file wins).
  symlinkJoin = { name, paths, meta ? { }, passthru ? { } }:
    runCommand name { inherit paths meta passthru; } ''
      mkdir -p "$out"
      for p in $paths; do
        (cd "$p" && find . ! -type d) | sort | while read -r f; do
          f=''${f#./}
          [ -e "$out/$f" ] || [ -L "$out/$f" ] && continue
          mkdir -p "$out/$(dirname "$f")"
          ln -s "$p/$f" "$out/$f"
        done
      done
    '';

  # mkShell { packages; buildInputs; nativeBuildInputs; shellHook; }: the
  # environment a build of those inputs would have, for `kiln shell` (or
  # nix-shell): they source $stdenv/setup. Building it records the
  # environment's search paths in $out, so it can also be built and kept.
  mkShell = { name ? "shell", packages ? [ ], buildInputs ? [ ], nativeBuildInputs ? [ ], shellHook ? "", meta ? { }, passthru ? { }, ... }@args:
    stdenv.mkDerivation ((removeAttrs args [ "packages" ]) // {
      inherit name shellHook meta passthru;
      nativeBuildInputs = packages ++ nativeBuildInputs;
      inherit buildInputs;
      phases = [ "buildPhase" ];
      buildPhase = ''
        { echo "PATH=$PATH"
          echo "NIX_CFLAGS_COMPILE=$NIX_CFLAGS_COMPILE"
          echo "NIX_LDFLAGS=$NIX_LDFLAGS"
        } > "$out"
      '';
    });
}
