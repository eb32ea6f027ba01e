#!/usr/bin/env python3
"""Writes a nixpkgs-like Nix file of about the given size (default 5 MB)
for the parse benchmark: many package definitions with strings,
interpolation, indented strings, lists, paths, `with`, `let`, `inherit`,
operators and selects with defaults. Deterministic (fixed seed)."""
import random
import sys

target = int(sys.argv[1]) if len(sys.argv) > 1 else 5 * 1024 * 1024
rng = random.Random(42)
out = ["{ lib, fetchurl, stdenv, pkgs ? {}, ... }:\n",
       "let\n  inherit (lib) optional optionals licenses platforms;\n",
       "  mkFlag = name: value: \"--${if value then \"enable\" else \"disable\"}-${name}\";\n",
       "in rec {\n"]
size = sum(map(len, out))
i = 0
while size < target:
    prev = f"pkg{i - 1}" if i > 0 else "stdenv"
    words = " ".join(rng.choice(["fast", "small", "tool", "library", "for", "the", "data", "parser"])
                     for _ in range(6))
    h = "".join(rng.choice("0123456789abcdfghijklmnpqrsvwxyz") for _ in range(52))
    block = f"""  pkg{i} = stdenv.mkDerivation rec {{
    pname = "pkg{i}";
    version = "{i % 10}.{i % 7}.{i % 13}";
    src = fetchurl {{
      url = "https://example.org/releases/pkg{i}-${{version}}.tar.gz";
      sha256 = "{h}";
    }};
    patches = [ ./patches/pkg{i}-fix.patch ] ++ optional (stdenv.isLinux or false) ./patches/linux-{i}.patch;
    buildInputs = [ {prev} ] ++ optionals (pkgs ? extra) [ pkgs.extra.lib{i} or null ];
    configureFlags = [ (mkFlag "feature{i}" true) "--with-level={i * 3}" "--prefix=${{placeholder "out"}}" ];
    doCheck = !stdenv.hostPlatform.isStatic && {i} / 3 * 3 + 1 - 1 >= {i % 5} || false;
    postInstall = ''
      mkdir -p $out/share/pkg{i}
      cp -r ${{src}}/doc $out/share/pkg{i}/ # copy docs
      echo "built ${{pname}}-${{version}}" > $out/share/pkg{i}/stamp
    '';
    passthru = {{ tests.run = let n = {i}; in n * n; inherit version; }};
    meta = with lib; {{
      description = "A {words}";
      homepage = "https://example.org/pkg{i}";
      license = licenses.mit;
      platforms = platforms.unix;
      maintainers = [ ];
    }};
  }};
"""
    out.append(block)
    size += len(block)
    i += 1
out.append("}\n")
sys.stdout.write("".join(out))
