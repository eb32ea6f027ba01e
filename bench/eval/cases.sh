# The benchmark cases, shared by run.sh: NAME and an expression (or a
# file generated into $WORK).
CASES=(fib attrs strings parse)

case_expr() {
  case "$1" in
    fib) echo 'let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib 27' ;;
    attrs) echo 'let s = builtins.listToAttrs (builtins.genList (i: { name = "k${toString i}"; value = i; }) 100000); in builtins.foldl'"'"' (acc: n: acc + s.${n}) 0 (builtins.attrNames s)' ;;
    strings) echo 'builtins.stringLength (builtins.concatStringsSep "," (builtins.genList (i: toString i) 100000))' ;;
    parse) echo "builtins.length (import $WORK/big.nix)" ;;
  esac
}

# A 5 MB file of attribute sets, strings, lists and arithmetic.
generate_big_file() {
  python3 - "$WORK/big.nix" <<'PY'
import sys
out = open(sys.argv[1], "w")
out.write("[\n")
size, i = 0, 0
while size < 5_000_000:
    line = f'  {{ name = "pkg-{i}"; version = "1.{i % 97}.{i % 13}"; deps = [ {i} {i + 1} {i * 2} ]; flag = {str(i % 2 == 0).lower()}; n = {i} * 3 + 1; s = "a${{"b"}}c"; }}\n'
    out.write(line)
    size += len(line)
    i += 1
out.write("]\n")
PY
}
