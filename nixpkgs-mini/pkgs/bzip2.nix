# bzip2: a plain Makefile (no configure), the library in out/lib, bzlib.h
# in dev, and the bzgrep/bzmore/bzdiff scripts whose #!/bin/sh the fixup
# phase patches to the store's shell.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "bzip2";
  version = "1.0.8";
  src = sources.bzip2;
  outputs = [ "out" "dev" ];
  # make reads $(out) from the environment, as in nixpkgs.
  makeFlags = [ "CC=cc" "AR=${stdenv.cc}/bin/ar" "RANLIB=${stdenv.cc}/bin/ranlib" "PREFIX=$(out)" ];
  doCheck = true;
  # Relative links: absolute ones would name $out from inside $out.
  postInstall = ''
    cd $out/bin
    for l in bzegrep bzfgrep; do ln -sf bzgrep $l; done
    ln -sf bzmore bzless
    ln -sf bzdiff bzcmp
    mkdir -p $out/share && mv $out/man $out/share/man
  '';
  meta = {
    description = "High-quality data compression program";
    homepage = "https://sourceware.org/bzip2/";
    license = lib.licenses.bzip2-1010;
  };
}
