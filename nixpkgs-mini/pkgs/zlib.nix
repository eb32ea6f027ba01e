# zlib: the static library in out, headers and zlib.pc in dev.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "zlib";
  version = "1.3.1";
  src = sources.zlib;
  outputs = [ "out" "dev" ];
  # zlib's own configure script (not autoconf): static only.
  configureFlags = [ "--static" ];
  doCheck = true;
  checkTarget = "teststatic";
  meta = {
    description = "Lossless data-compression library";
    homepage = "https://zlib.net/";
    license = lib.licenses.zlib;
  };
}
