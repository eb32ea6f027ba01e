let
  step = prev: i: derivation {
    name = "chain-${toString i}";
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo ${toString i} > $out" ];
    inherit prev;
  };
in builtins.foldl' step "" (builtins.genList (i: i) 2000)
