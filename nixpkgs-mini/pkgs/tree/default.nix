# tree: a plain Makefile, with a patch (man pages under share/man) applied
# in the patch phase.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "tree";
  version = "2.1.0";
  src = sources.tree;
  patches = [ ./man-in-share.patch ];
  makeFlags = [ "CC=cc" "PREFIX=$(out)" ];
  meta = {
    description = "Command to produce a depth indented directory listing";
    homepage = "https://oldmanprogrammer.net/source.php?dir=projects/tree";
    license = lib.licenses.gpl2Plus;
  };
}
