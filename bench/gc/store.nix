# 10,000 dead paths and 1,000 live ones (held by one root file that refers
# to all of them): builtins.toFile, so kiln and Nix make the same paths.
let
  range = n: builtins.genList (i: i) n;
  mk = kind: i: builtins.toFile "${kind}-${toString i}" "${kind} path ${toString i}\n";
  live = map (mk "live") (range 1000);
  dead = map (mk "dead") (range 10000);
  root = builtins.toFile "root" (builtins.concatStringsSep "\n" live);
in builtins.seq (builtins.deepSeq dead null) root
