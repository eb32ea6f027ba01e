//! Fuzzes the NAR reader: any input must give an error or a tree, never a
//! panic, and a restored tree must dump back to exactly the bytes read
//! (NARs are canonical), with nothing created outside the target.

#![no_main]

use libfuzzer_sys::fuzz_target;

use kiln_store::nar;

fuzz_target!(|data: &[u8]| {
    let validated = nar::validate(&mut &data[..]);
    let Ok(sandbox) = tempfile::tempdir() else {
        return;
    };
    let target = sandbox.path().join("out");
    let restored = nar::restore(&mut &data[..], &target);
    match (&validated, &restored) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "validate and restore read different lengths");
            let mut again = Vec::new();
            nar::dump_path(&target, &mut again).expect("restored tree dumps");
            assert_eq!(again, &data[..*a as usize], "restored tree is not the NAR read");
        }
        (Err(_), Ok(_)) => panic!("restore accepted a NAR that validate rejects"),
        _ => {}
    }
    // The sandbox holds only the target.
    let entries: Vec<_> = std::fs::read_dir(sandbox.path())
        .expect("sandbox readable")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(entries.is_empty() || entries == ["out"], "restore wrote {entries:?}");
});
