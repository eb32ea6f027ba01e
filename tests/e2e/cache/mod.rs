//! Binary caches: `kiln cache push`, `kiln cache fetch`, substitution in
//! `kiln build`; a real nginx (WebDAV PUT) and real Nix 2.8 on 127.0.0.1;
//! tampered caches as an attacker would make them.

mod attack;
mod basic;
mod interop;
pub(crate) mod kit;
