# The builder of every stdenv.mkDerivation (run by busybox sh -e), as in
# Nix's stdenv: source the setup, run the phases.
set -eu
. "$stdenv/setup"
genericBuild
