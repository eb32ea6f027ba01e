# zpipe: zlib's example filter (examples/zpipe.c in zlib's release
# tarball), one C file linked against the zlib package.
{ stdenv, sources, lib, zlib }:
stdenv.mkDerivation {
  pname = "zpipe";
  version = "1.3.1";
  src = sources.zlib;
  buildInputs = [ zlib ];
  dontConfigure = true;
  # In examples/, so zlib.h comes from the zlib package, not the source.
  buildPhase = ''
    cd examples
    cc -O2 zpipe.c -lz -o zpipe
  '';
  installPhase = ''
    mkdir -p $out/bin
    cp zpipe $out/bin/zpipe
  '';
  meta = {
    description = "zlib's example of deflate and inflate as a filter (zpipe -d decompresses)";
    homepage = "https://zlib.net/zlib_how.html";
    # "Not copyrighted -- provided to the public domain" (zpipe.c).
    license = lib.licenses.publicDomain;
  };
}
