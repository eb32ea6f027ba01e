//! Fuzzes the ATerm derivation reader: it must never panic, and whatever it
//! accepts must write back to the same bytes and survive the JSON round trip
//! and the hash and path computations.

#![no_main]

use kiln_store::derivation::{DerivationError, DrvHash, DrvHashKind};
use kiln_store::{Derivation, Hash, HashAlgo, StoreDir, StorePath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = StoreDir::new("/nix/store") else {
        return;
    };
    let Ok(drv) = Derivation::parse(&dir, data) else {
        return;
    };
    assert_eq!(drv.to_aterm(&dir), data, "accepted input must round-trip");
    let json = drv.to_json(&dir);
    assert_eq!(Derivation::from_json(&dir, &json).as_ref(), Ok(&drv));

    // Every input derivation gets a made-up regular hash for all its outputs.
    let mut input_hash = |path: &StorePath| -> Result<DrvHash, DerivationError> {
        let hash = Hash::digest(HashAlgo::Sha256, path.to_string());
        let outputs = drv.input_drvs[path]
            .iter()
            .map(|name| (name.clone(), hash.clone()))
            .collect();
        Ok(DrvHash {
            outputs,
            kind: DrvHashKind::Regular,
        })
    };
    let _ = drv.hash_modulo(&dir, true, &mut input_hash);
    let mut filled = drv.clone();
    let _ = filled.fill_output_paths(&dir, "fuzz", &mut input_hash);
    let _ = drv.drv_path(&dir, "fuzz");
});
