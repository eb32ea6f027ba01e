{ stdenv, seed, ... }:
stdenv.mkDerivation {
  pname = "hello";
  version = "2.10";
  src = seed.sources.hello;
  doCheck = true;
  meta = {
    description = "A program that produces a familiar, friendly greeting";
    license = "GPL-3.0-or-later";
    homepage = "https://www.gnu.org/software/hello/";
  };
}
