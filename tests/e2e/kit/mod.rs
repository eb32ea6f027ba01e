//! The shared test kit: a fresh root and HOME per test (`env`), a store
//! with busybox and a derivation writer for builds (`drv`), one loopback
//! HTTP server (`http`) and one pseudo-random generator (`prng`).

#![allow(dead_code)]

mod drv;
pub mod elf;
mod env;
mod http;
mod nar;
mod prng;
mod pty;

pub use drv::{DrvKit, STORE_DIR, Spec};
pub use env::{
    KILN_ENV_VARS, TestEnv, command_running, process_running, read, require_bwrap, which,
};
pub use http::Server;
pub use nar::raw_nar;
pub use prng::Prng;
pub use pty::Pty;
