# GNU hello from its release tarball: configure, make, `make check`.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "hello";
  version = "2.10";
  src = sources.hello;
  doCheck = true;
  meta = {
    description = "A program that produces a familiar, friendly greeting";
    homepage = "https://www.gnu.org/software/hello/";
    license = lib.licenses.gpl3Plus;
  };
}
