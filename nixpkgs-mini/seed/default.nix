# The seed and the sources as fixed-output derivations, pinned by sha256.
# `seed/fetch` adds each file to the store at exactly these paths, so they
# are valid before any build; nothing here ever downloads. A missing one
# fails with the command to run.
let
  system = "x86_64-linux";
  fetchCommand = "nixpkgs-mini/seed/fetch";

  # The bootstrap root: a directory holding Debian's static busybox as
  # bin/busybox (taken out of busybox-static_1.35.0-4+deb12u1+b1_amd64.deb).
  busybox = derivation {
    name = "busybox";
    system = "builtin";
    builder = "builtin:fetchurl";
    url = "file:///the-seed-is-not-in-the-store/run/${fetchCommand}";
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = "494cdad037cf7d0a75ee816fc060b92663de1309602aff43c2f9ce55dade4c40";
  };

  # A file of the lock (flat hash), like nixpkgs' fetchurl { name; sha256; }.
  fetchurl = { name, sha256 }: derivation {
    inherit name system;
    builder = "${busybox}/bin/busybox";
    args = [ "sh" "-c" ''
      echo "the seed file ${name} is not in the store: run ${fetchCommand} (see docs/nixpkgs-mini.md)" >&2
      exit 1
    '' ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = sha256;
  };
in {
  inherit busybox fetchurl;

  ziglang = fetchurl {
    name = "ziglang-0.17.1-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl";
    sha256 = "ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54";
  };

  sources = {
    hello = fetchurl { name = "hello_2.10.orig.tar.gz"; sha256 = "31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b"; };
    make = fetchurl { name = "make-dfsg_4.4.1.orig.tar.xz"; sha256 = "3b16b00ea1079af9f8096bbc71ff7cc00c249fc6a862003da3c42308a0adb0fe"; };
    zlib = fetchurl { name = "zlib_1.3.dfsg+really1.3.1.orig.tar.gz"; sha256 = "60dd315c07f616887caa029408308a018ace66e3d142726a97db164b3b8f69fb"; };
    pigz = fetchurl { name = "pigz_2.8.orig.tar.xz"; sha256 = "bec34f9d61e28b9b069da9efd53e73d22cd207a4798ed664832dc9b17aa486aa"; };
    bzip2 = fetchurl { name = "bzip2_1.0.8.orig.tar.gz"; sha256 = "ab5a03176ee106d3f0fa90e381da478ddae405918153cca248e682cd0c4a2269"; };
    lua = fetchurl { name = "lua5.4_5.4.7.orig.tar.gz"; sha256 = "9fbf5e28ef86c69858f6d3d34eccc32e911c1a28b4120ff3e84aaa70cfbf1e30"; };
    xz = fetchurl { name = "xz-utils_5.4.1.orig.tar.xz"; sha256 = "5d9827aa1875b21c288f78864bb26d2650b436ea8d2cad364e4921eb6266a5a5"; };
    tree = fetchurl { name = "tree_2.1.0.orig.tar.gz"; sha256 = "0160c535bff2b0dc6a830b9944e981e3427380f63e748da96ced7071faebabf6"; };
    m4 = fetchurl { name = "m4_1.4.19.orig.tar.xz"; sha256 = "63aede5c6d33b6d9b13511cd0be2cac046f2e70fd0a07aa9573a04a82783af96"; };
    gzip = fetchurl { name = "gzip_1.12.orig.tar.xz"; sha256 = "ce5e03e519f637e1f814011ace35c4f87b33c0bbabeec35baf5fbd3479e91956"; };
  };
}
