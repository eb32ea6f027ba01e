# pigz: parallel gzip, a plain Makefile linking zlib (-lz finds zlib's lib
# through the cc wrapper's NIX_LDFLAGS, zlib.h through NIX_CFLAGS_COMPILE).
{ stdenv, sources, lib, zlib }:
stdenv.mkDerivation {
  pname = "pigz";
  version = "2.8";
  src = sources.pigz;
  buildInputs = [ zlib ];
  makeFlags = [ "CC=cc" ];
  doCheck = true;
  installPhase = ''
    mkdir -p $out/bin $out/share/man/man1
    cp pigz $out/bin/pigz
    ln -s pigz $out/bin/unpigz
    cp pigz.1 $out/share/man/man1/pigz.1
  '';
  meta = {
    description = "A parallel implementation of gzip for multi-core machines";
    homepage = "https://zlib.net/pigz/";
    license = lib.licenses.zlib;
  };
}
