# A first build. A static busybox from the host becomes a store path (only
# that one file, picked by a filter), and a sandboxed build uses it to write
# a greeting. The build sees nothing of the host but that store path.
#
#   kiln build examples/hello.nix && cat result
let
  busybox = builtins.path {
    name = "busybox";
    path = /usr/bin;
    filter = path: type: baseNameOf path == "busybox";
  };
in
derivation {
  name = "hello";
  system = builtins.currentSystem;
  builder = "${busybox}/busybox";
  args = [ "sh" "-c" "echo \"Hello from $name, built in a kiln sandbox\" > $out" ];
}
