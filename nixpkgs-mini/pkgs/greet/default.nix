# greet: a shell-script package from a local source directory; the fixup
# phase patches its #!/bin/sh to the store's busybox sh, and it refers to
# hello at run time.
{ stdenv, lib, hello }:
stdenv.mkDerivation {
  pname = "greet";
  version = "1.0";
  src = ./src;
  dontConfigure = true;
  dontBuild = true;
  installPhase = ''
    mkdir -p $out/bin
    sed "s|@hello@|${hello}/bin/hello|g" greet > $out/bin/greet
    chmod 555 $out/bin/greet
  '';
  meta = {
    description = "Greets people by name, with GNU hello";
    license = lib.licenses.mitOrApache2;
  };
}
