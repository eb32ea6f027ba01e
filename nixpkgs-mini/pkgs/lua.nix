# Lua 5.4: a plain Makefile; the interpreter, liblua.a, headers in dev.
{ stdenv, sources, lib }:
stdenv.mkDerivation {
  pname = "lua";
  version = "5.4.7";
  src = sources.lua;
  outputs = [ "out" "dev" ];
  # The Makefile names gcc, ar and ranlib; luaconf.h looks for modules
  # under /usr/local/.
  postPatch = ''
    sed -i -e "s|^CC= gcc|CC= cc|" -e "s|^AR= ar|AR= $AR|" -e "s|^RANLIB= ranlib|RANLIB= $RANLIB|" src/Makefile
    sed -i -e "s|/usr/local/|$out/|" src/luaconf.h
  '';
  buildFlags = [ "posix" ];
  doCheck = true;
  installFlags = [ "INSTALL_TOP=$(out)" "INSTALL_MAN=$(out)/share/man/man1" ];
  meta = {
    description = "Powerful, fast, lightweight, embeddable scripting language";
    homepage = "https://www.lua.org/";
    license = lib.licenses.mit;
  };
}
