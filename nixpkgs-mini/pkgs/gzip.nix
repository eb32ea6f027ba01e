# GNU gzip: autoconf and gnulib; zcat, zgrep, gunzip, ... are shell scripts
# whose #!/bin/sh the fixup phase patches.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "gzip";
  version = "1.12";
  src = sources.gzip;
  meta = {
    description = "GNU zip compression program";
    homepage = "https://www.gnu.org/software/gzip/";
    license = lib.licenses.gpl3Plus;
  };
}
