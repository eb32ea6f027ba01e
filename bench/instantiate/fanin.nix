let
  leaf = i: derivation {
    name = "leaf-${toString i}";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo ${toString i} > $out" ];
  };
in derivation {
  name = "fan-in";
  system = "x86_64-linux";
  builder = "/bin/sh";
  inputs = builtins.genList leaf 2000;
}
