//! `kiln store serve --stdio` and `kiln_remote::serve::ServeClient`: Nix's
//! `nix-store --serve` protocol between two kiln roots over pipes, against
//! hostile servers, and with real Nix 2.8 on either side.

mod hostile;
mod kiln;
mod nix;

use std::path::Path;
use std::process::Command;

use kiln_remote::serve::ServeClient;
use kiln_store::StoreDir;
use kiln_store::store::{Store, StoreConfig};

/// `kiln --root ROOT --store-dir DIR store serve --stdio [--write]`.
pub fn kiln_serve(root: &Path, store_dir: &str, write: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    for var in crate::kit::KILN_ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("--root")
        .arg(root)
        .args(["--store-dir", store_dir, "store", "serve", "--stdio"]);
    if write {
        cmd.arg("--write");
    }
    cmd
}

pub fn open(root: &Path, store_dir: &str) -> Store {
    Store::open(StoreConfig {
        root: root.to_path_buf(),
        store_dir: StoreDir::new(store_dir).unwrap(),
    })
    .unwrap()
}

pub fn connect(cmd: Command, store_dir: &str) -> ServeClient {
    ServeClient::spawn(cmd, StoreDir::new(store_dir).unwrap()).expect("handshake")
}
