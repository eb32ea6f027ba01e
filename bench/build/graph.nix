# The benchmark graphs of bench/build/run.sh, for Nix: the same shapes and
# builders as builder/examples/bench_graph.rs (each node: a static busybox
# running `echo $name > $out`, its dependencies named in `deps`).
# nix-build graph.nix --arg shape '"chain"' --arg n 100 --arg bbDir ./bb
{ shape, n, bbDir }:
let
  bb = builtins.path { path = bbDir; name = "busybox"; };
  depsOf = i:
    if shape == "chain" || shape == "refchain" then (if i > 0 then [ (i - 1) ] else [ ])
    else builtins.filter (d: d >= 0) [ (i - 10) (i - 11) ];
  node = i: derivation {
    name = "node-${toString i}";
    system = "x86_64-linux";
    builder = "${bb}/bin/busybox";
    args = [ "sh" "-c" (if shape == "refchain" then "echo $name $deps > $out" else "echo $name > $out") ];
    deps = map (d: nodes.${toString d}) (depsOf i);
  };
  indices = builtins.genList (i: i) n;
  nodes = builtins.listToAttrs (map (i: { name = toString i; value = node i; }) indices);
  hasDependents = i: builtins.any (j: builtins.elem i (depsOf j)) indices;
in
  map (i: nodes.${toString i}) (builtins.filter (i: !hasDependents i) indices)
