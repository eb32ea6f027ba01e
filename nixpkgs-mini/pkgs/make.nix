# GNU make, rebuilt with the stdenv (the bootstrap's make-boot built it by
# its build.sh); its README, NEWS and AUTHORS go to the doc output.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "make";
  version = "4.4.1";
  src = sources.make;
  outputs = [ "out" "doc" ];
  # Debian's repack has no doc/ (the manuals are not DFSG-free), but
  # configure lists doc/Makefile: one whose every target does nothing.
  postUnpack = ''
    mkdir -p "$sourceRoot/doc"
    printf 'all install install-data install-exec installdirs check installcheck clean distclean mostlyclean maintainer-clean uninstall:\n\t@:\n' \
      > "$sourceRoot/doc/Makefile.in"
    # The top Makefile installs doc/make.1: a stub that says where the
    # manual is.
    printf '.TH MAKE 1 "" "GNU make 4.4.1"\n.SH NAME\nmake \\- GNU make utility to maintain groups of programs\n.SH DESCRIPTION\nThe manual is not in Debian'"'"'s source (it is not DFSG-free): see https://www.gnu.org/software/make/manual/\n' \
      > "$sourceRoot/doc/make.1"
  '';
  postInstall = ''
    mkdir -p $doc/share/doc/make
    cp README NEWS AUTHORS $doc/share/doc/make/
  '';
  configureFlags = [ "--disable-nls" ];
  meta = {
    description = "A tool to control the generation of non-source files from sources";
    homepage = "https://www.gnu.org/software/make/";
    license = lib.licenses.gpl3Plus;
  };
}
