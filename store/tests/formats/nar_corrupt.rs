//! The NAR reader on hostile input: truncations at every offset, flipped
//! bytes, evil names, unsorted and duplicate entries, bad padding, bad tags,
//! absurd lengths, deep nesting, and a bounded random-mutation run (the
//! stable-Rust twin of `fuzz/fuzz_targets/nar_reader.rs`). Every case must
//! give an error (or, for harmless mutations, a tree that dumps back to the
//! same bytes), never a panic, and nothing may appear outside the target.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_store::NarError;
use kiln_store::nar;

use crate::tsv::vector_path;

/// Builds NARs token by token, including wrong ones.
#[derive(Clone, Default)]
struct NarBuilder(Vec<u8>);

impl NarBuilder {
    fn new() -> Self {
        NarBuilder::default().s(b"nix-archive-1")
    }

    /// `str(bytes)` with correct padding.
    fn s(mut self, bytes: &[u8]) -> Self {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self.0.resize(self.0.len().next_multiple_of(8), 0);
        self
    }

    fn raw(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    fn regular(self, contents: &[u8]) -> Self {
        self.s(b"(")
            .s(b"type")
            .s(b"regular")
            .s(b"contents")
            .s(contents)
            .s(b")")
    }

    fn symlink(self, target: &[u8]) -> Self {
        self.s(b"(")
            .s(b"type")
            .s(b"symlink")
            .s(b"target")
            .s(target)
            .s(b")")
    }

    fn open_dir(self) -> Self {
        self.s(b"(").s(b"type").s(b"directory")
    }

    fn entry(self, name: &[u8], node: impl FnOnce(Self) -> Self) -> Self {
        node(self.s(b"entry").s(b"(").s(b"name").s(name).s(b"node")).s(b")")
    }

    fn close(self) -> Self {
        self.s(b")")
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A small NAR holding every node kind, nesting and an executable.
fn small_nar() -> Vec<u8> {
    NarBuilder::new()
        .open_dir()
        .entry(b"bin", |b| {
            b.open_dir()
                .entry(b"run", |b| {
                    b.s(b"(")
                        .s(b"type")
                        .s(b"regular")
                        .s(b"executable")
                        .s(b"")
                        .s(b"contents")
                        .s(b"#!/bin/sh\n")
                        .s(b")")
                })
                .close()
        })
        .entry(b"empty", |b| b.regular(b""))
        .entry(b"link", |b| b.symlink(b"../outside"))
        .entry(b"z", |b| b.regular(b"hello"))
        .close()
        .0
}

/// What exists under `dir`, as relative paths (symlinks not followed).
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(dir).unwrap_or(&path).to_owned());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out
}

/// A sandbox with decoys next to the restore target `out`.
struct Sandbox {
    dir: tempfile::TempDir,
    before: BTreeSet<PathBuf>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::write(dir.path().join("outside"), b"sentinel").expect("decoy file");
        fs::create_dir(dir.path().join("outside-dir")).expect("decoy dir");
        let before = listing(dir.path());
        Sandbox { dir, before }
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Panics if anything outside `out` was created or changed.
    fn assert_untouched(&self, what: &str) {
        let outside: BTreeSet<PathBuf> = listing(self.dir.path())
            .into_iter()
            .filter(|p| !p.starts_with("out"))
            .collect();
        assert_eq!(
            outside, self.before,
            "{what}: restore wrote outside its target"
        );
        assert_eq!(
            fs::read(self.dir.path().join("outside")).ok().as_deref(),
            Some(&b"sentinel"[..]),
            "{what}: decoy file changed"
        );
    }
}

impl Sandbox {
    /// Restores `input` to the target, checks confinement and, on success,
    /// that the tree dumps back to exactly the bytes read and that
    /// `validate` agrees. Removes the target afterwards, so the sandbox can
    /// be reused.
    fn restore_checked(&self, input: &[u8], what: &str) -> Result<u64, NarError> {
        let target = self.target();
        let result = nar::restore(&mut &input[..], &target);
        self.assert_untouched(what);
        let validated = nar::validate(&mut &input[..]);
        match (&result, &validated) {
            (Ok(size), Ok(checked)) => {
                assert_eq!(
                    size, checked,
                    "{what}: restore and validate disagree on the size"
                );
                let mut again = Vec::new();
                nar::dump_path(&target, &mut again).expect("restored tree dumps");
                assert_eq!(
                    again,
                    &input[..*size as usize],
                    "{what}: restored tree differs"
                );
            }
            (Ok(_), Err(e)) => panic!("{what}: restore accepted what validate rejects: {e}"),
            (Err(_), _) => {}
        }
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&target).expect("clean target"),
            Ok(_) => fs::remove_file(&target).expect("clean target"),
            Err(_) => {}
        }
        result
    }
}

/// [`Sandbox::restore_checked`] in a fresh sandbox.
fn restore_checked(input: &[u8], what: &str) -> Result<u64, NarError> {
    Sandbox::new().restore_checked(input, what)
}

#[test]
fn small_nar_is_valid() {
    let nar = small_nar();
    assert_eq!(restore_checked(&nar, "small").unwrap(), nar.len() as u64);
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let nar = small_nar();
    let sandbox = Sandbox::new();
    for len in 0..nar.len() {
        let what = format!("truncated to {len} bytes");
        let result = sandbox.restore_checked(&nar[..len], &what);
        assert!(
            matches!(result, Err(NarError::Truncated { .. })),
            "{what}: {result:?}"
        );
    }
    // The larger vectors too, validate only (cheap).
    for name in ["nested", "padding", "symlink-absolute"] {
        let bytes = fs::read(vector_path(&format!("nar/{name}.nar"))).expect("vector");
        for len in 0..bytes.len() {
            let result = nar::validate(&mut &bytes[..len]);
            assert!(
                matches!(result, Err(NarError::Truncated { .. })),
                "{name} truncated to {len}: {result:?}"
            );
        }
    }
}

#[test]
fn flipped_bytes_never_escape_or_panic() {
    let nar = small_nar();
    let sandbox = Sandbox::new();
    let mut rejected = 0;
    for offset in 0..nar.len() {
        for mask in [0x01_u8, 0xff] {
            let mut bad = nar.clone();
            bad[offset] ^= mask;
            if sandbox
                .restore_checked(&bad, &format!("byte {offset} ^ {mask:#x}"))
                .is_err()
            {
                rejected += 1;
            }
        }
    }
    // Most flips hit structure, not file contents, and must be caught.
    assert!(
        rejected > nar.len() * 3 / 2,
        "only {rejected} flips rejected"
    );
}

#[test]
fn evil_entry_names_are_rejected() {
    for name in [
        &b".."[..],
        b".",
        b"",
        b"a/b",
        b"/etc",
        b"../outside",
        b"a\0b",
        b"x/../../outside",
    ] {
        let input = NarBuilder::new()
            .open_dir()
            .entry(name, |b| b.regular(b"pwned"))
            .close();
        let result = restore_checked(input.bytes(), &format!("name {name:?}"));
        assert!(
            matches!(result, Err(NarError::BadEntryName { offset: 128, .. })),
            "name {name:?}: {result:?}"
        );
    }
    let long = vec![b'a'; 256];
    let input = NarBuilder::new()
        .open_dir()
        .entry(&long, |b| b.regular(b""))
        .close();
    assert!(matches!(
        restore_checked(input.bytes(), "256-byte name"),
        Err(NarError::TooLong { len: 256, .. })
    ));
}

#[test]
fn duplicate_and_unsorted_entries_are_rejected() {
    let cases: Vec<(&str, NarBuilder)> = vec![
        (
            "duplicate file",
            NarBuilder::new()
                .open_dir()
                .entry(b"a", |b| b.regular(b"1"))
                .entry(b"a", |b| b.regular(b"2")),
        ),
        (
            "unsorted",
            NarBuilder::new()
                .open_dir()
                .entry(b"b", |b| b.regular(b""))
                .entry(b"a", |b| b.regular(b"")),
        ),
        (
            "bytewise, not case-insensitive: a before B",
            NarBuilder::new()
                .open_dir()
                .entry(b"a", |b| b.regular(b""))
                .entry(b"B", |b| b.regular(b"")),
        ),
        (
            "symlink then a directory of the same name",
            NarBuilder::new()
                .open_dir()
                .entry(b"a", |b| b.symlink(b"../outside-dir"))
                .entry(b"a", |b| {
                    b.open_dir().entry(b"x", |b| b.regular(b"pwned")).close()
                }),
        ),
        (
            "symlink then a file of the same name",
            NarBuilder::new()
                .open_dir()
                .entry(b"a", |b| b.symlink(b"../outside"))
                .entry(b"a", |b| b.regular(b"pwned")),
        ),
    ];
    for (what, input) in cases {
        let input = input.close();
        let result = restore_checked(input.bytes(), what);
        assert!(
            matches!(result, Err(NarError::UnsortedEntry { .. })),
            "{what}: {result:?}"
        );
    }
}

/// Whether an error is the one a case expects.
type ErrorCheck = fn(&NarError) -> bool;

#[test]
fn bad_tokens_padding_and_lengths_are_rejected() {
    let mut bad_padding = NarBuilder::new().regular(b"abc").0;
    // The contents "abc" are followed by 5 padding bytes; the magic and six
    // tokens come first (13+5+8, then "(", "type", "regular", "contents").
    let contents_at = 24 + 16 + 16 + 16 + 16 + 8;
    bad_padding[contents_at + 3] = 1;
    let cases: Vec<(&str, Vec<u8>, ErrorCheck)> = vec![
        (
            "bad magic",
            NarBuilder::default().s(b"nix-archive-2").regular(b"").0,
            |e| matches!(e, NarError::BadTag { offset: 0, .. }),
        ),
        (
            "bad node type",
            NarBuilder::new().s(b"(").s(b"type").s(b"fifo").s(b")").0,
            |e| matches!(e, NarError::BadTag { offset: 56, .. }),
        ),
        ("non-zero padding in contents", bad_padding, |e| {
            matches!(e, NarError::BadPadding { .. })
        }),
        (
            "non-zero padding in a token",
            NarBuilder::new()
                .raw(&[1, 0, 0, 0, 0, 0, 0, 0, b'(', 1, 0, 0, 0, 0, 0, 0])
                .0,
            |e| matches!(e, NarError::BadPadding { offset: 33 }),
        ),
        (
            "2^60-byte tag",
            NarBuilder::new().raw(&(1_u64 << 60).to_le_bytes()).0,
            |e| matches!(e, NarError::BadTag { .. }),
        ),
        (
            "2^60-byte name",
            NarBuilder::new()
                .open_dir()
                .s(b"entry")
                .s(b"(")
                .s(b"name")
                .raw(&(1_u64 << 60).to_le_bytes())
                .0,
            |e| matches!(e, NarError::TooLong { len, .. } if *len == 1 << 60),
        ),
        (
            "2^60-byte symlink target",
            NarBuilder::new()
                .s(b"(")
                .s(b"type")
                .s(b"symlink")
                .s(b"target")
                .raw(&(1_u64 << 60).to_le_bytes())
                .0,
            |e| matches!(e, NarError::TooLong { .. }),
        ),
        (
            "2^64-1-byte contents (streamed, never allocated)",
            NarBuilder::new()
                .s(b"(")
                .s(b"type")
                .s(b"regular")
                .s(b"contents")
                .raw(&u64::MAX.to_le_bytes())
                .raw(b"some data")
                .0,
            |e| matches!(e, NarError::Truncated { .. }),
        ),
        (
            "executable marker with a value",
            NarBuilder::new()
                .s(b"(")
                .s(b"type")
                .s(b"regular")
                .s(b"executable")
                .s(b"yes")
                .s(b"contents")
                .s(b"")
                .s(b")")
                .0,
            |e| matches!(e, NarError::BadTag { .. }),
        ),
        (
            "contents twice",
            NarBuilder::new()
                .s(b"(")
                .s(b"type")
                .s(b"regular")
                .s(b"contents")
                .s(b"a")
                .s(b"contents")
                .s(b"b")
                .s(b")")
                .0,
            |e| matches!(e, NarError::BadTag { .. }),
        ),
        (
            "empty symlink target",
            NarBuilder::new().symlink(b"").0,
            |e| matches!(e, NarError::BadSymlinkTarget { offset: 88, .. }),
        ),
        (
            "NUL in symlink target",
            NarBuilder::new().symlink(b"a\0b").0,
            |e| matches!(e, NarError::BadSymlinkTarget { .. }),
        ),
        (
            "garbage in a directory",
            NarBuilder::new().open_dir().s(b"name").0,
            |e| matches!(e, NarError::BadTag { .. }),
        ),
        (
            "entry without its closing paren",
            NarBuilder::new()
                .open_dir()
                .s(b"entry")
                .s(b"(")
                .s(b"name")
                .s(b"a")
                .s(b"node")
                .regular(b"")
                .s(b"entry")
                .0,
            |e| matches!(e, NarError::BadTag { .. }),
        ),
    ];
    for (what, input, expected) in cases {
        let result = restore_checked(&input, what);
        match &result {
            Err(e) if expected(e) => {}
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
}

#[test]
fn nesting_is_bounded() {
    let depth = 2000;
    let mut input = NarBuilder::new();
    for _ in 0..depth {
        input = input
            .open_dir()
            .s(b"entry")
            .s(b"(")
            .s(b"name")
            .s(b"d")
            .s(b"node");
    }
    let result = nar::validate(&mut input.bytes());
    assert!(
        matches!(result, Err(NarError::TooDeep { max: 1024, .. })),
        "{result:?}"
    );
}

#[test]
fn deep_valid_tree_restores_and_dumps_back() {
    // Deeper than a recursive reader or writer could go on a test thread's stack.
    let depth = 1000;
    let mut input = NarBuilder::new();
    for _ in 0..depth {
        input = input
            .open_dir()
            .s(b"entry")
            .s(b"(")
            .s(b"name")
            .s(b"d")
            .s(b"node");
    }
    input = input.regular(b"bottom");
    for _ in 0..depth {
        input = input.s(b")").close();
    }
    let size = restore_checked(input.bytes(), "1000 nested directories").expect("valid");
    assert_eq!(size, input.bytes().len() as u64);
}

#[test]
fn existing_target_is_refused() {
    let sandbox = Sandbox::new();
    let target = sandbox.target();
    std::os::unix::fs::symlink(sandbox.dir.path().join("outside-dir"), &target).expect("symlink");
    let nar = small_nar();
    let result = nar::restore(&mut &nar[..], &target);
    assert!(
        matches!(result, Err(NarError::TargetExists(_))),
        "{result:?}"
    );
    sandbox.assert_untouched("pre-existing symlink target");
    assert!(listing(&sandbox.dir.path().join("outside-dir")).is_empty());
}

#[test]
fn reader_stops_at_the_end_of_the_nar() {
    let mut stream = small_nar();
    let len = stream.len() as u64;
    stream.extend_from_slice(b"trailing protocol data");
    let mut input = &stream[..];
    assert_eq!(nar::validate(&mut input).unwrap(), len);
    assert_eq!(input, b"trailing protocol data");
}

/// xorshift64*: a tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random structural or byte-level change.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    const INTERESTING: [u64; 8] = [0, 1, 2, 7, 8, 255, 1 << 60, u64::MAX];
    let len = input.len();
    match rng.below(7) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = [0, 0xff, b'.', b'/', b'(', b')'][rng.below(6)];
        }
        2 if len >= 8 => {
            let word = rng.below(len / 8) * 8;
            let value = INTERESTING[rng.below(INTERESTING.len())];
            input[word..word + 8].copy_from_slice(&value.to_le_bytes());
        }
        3 => input.truncate(rng.below(len + 1)),
        4 if len > 0 => {
            let start = rng.below(len);
            let end = (start + rng.below(64)).min(len);
            input.drain(start..end);
        }
        5 if len >= 8 => {
            // Copy an aligned run of tokens elsewhere: duplicates entries,
            // nests nodes, reorders structure.
            let from = rng.below(len / 8) * 8;
            let to = rng.below(len / 8) * 8;
            let run = (rng.below(12) * 8).min(len - from);
            let chunk = input[from..from + run].to_vec();
            input.splice(to..to, chunk);
        }
        _ => {
            let at = rng.below(len + 1);
            input.insert(at, rng.next() as u8);
        }
    }
}

#[test]
fn random_mutations_never_panic_or_escape() {
    let seeds: Vec<Vec<u8>> = [
        "nested",
        "padding",
        "symlink",
        "executable-file",
        "only-empty-dir",
    ]
    .iter()
    .map(|name| fs::read(vector_path(&format!("nar/{name}.nar"))).expect("vector"))
    .chain([small_nar()])
    .collect();
    let seed = 0x6b69_6c6e_u64;
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(3);
    let sandbox = Sandbox::new();
    let mut runs = 0;
    while runs < 20_000 && Instant::now() < deadline {
        let mut input = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut rng, &mut input);
        }
        let what = format!("mutation run {runs} (seed {seed:#x})");
        // Restoring touches the disk; do it for every fourth input.
        if runs % 4 == 0 {
            let _ = sandbox.restore_checked(&input, &what);
        } else {
            let _ = nar::validate(&mut &input[..]);
        }
        runs += 1;
    }
    assert!(runs > 100, "only {runs} mutation runs in the time limit");
}
