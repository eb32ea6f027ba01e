# The shell and the program of bench/shell/run.sh, the same for kiln and
# Nix: a static busybox from ./busybox, a tool built with it, and a
# derivation that uses the tool (its shell: the tool on PATH, a variable,
# a shellHook). No stdenv: neither side sources a setup script.
let
  bb = "${./busybox}/bin/busybox";
in rec {
  tool = derivation {
    name = "tool-1.0";
    system = "x86_64-linux";
    builder = bb;
    inherit bb;
    args = [ "sh" "-c" ''
      $bb mkdir -p $out/bin
      printf '#!%s sh\necho tool-says "$@"\n' $bb > $out/bin/tool
      $bb chmod +x $out/bin/tool
    '' ];
  };
  app = derivation {
    name = "app-1.0";
    system = "x86_64-linux";
    builder = bb;
    args = [ "sh" "-c" "tool hi > $out" ];
    buildInputs = [ tool ];
    greeting = "hello";
    shellHook = "export HOOKED=1";
  };
}
