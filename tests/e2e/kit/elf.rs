//! A static x86-64 program made of one system call, written byte by byte:
//! the sandbox has no compiler and busybox has no `setfattr` or `keyctl`,
//! yet the tests must try those calls as a builder would. The program
//! exits with the call's errno (0 when it succeeded).

/// One argument of the call: a number, or bytes the program carries
/// (NUL-terminated) whose address is passed.
pub enum Arg<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

const BASE: u64 = 0x40_0000;
const HEADERS: usize = 64 + 56;

/// The program: each call in turn, then `exit(-result & 0xff)` of the
/// last (its errno, or 0 when it succeeded).
pub fn syscall_program(calls: &[(u32, Vec<Arg<'_>>)]) -> Vec<u8> {
    // movabs into rdi, rsi, rdx, r10, r8 (the system call registers).
    const MOVABS: [[u8; 2]; 5] = [
        [0x48, 0xbf],
        [0x48, 0xbe],
        [0x48, 0xba],
        [0x49, 0xba],
        [0x49, 0xb8],
    ];
    let code_len: usize = calls
        .iter()
        .map(|(_, args)| args.len() * 10 + 5 + 2)
        .sum::<usize>()
        + 2
        + 2
        + 5
        + 2;
    let mut data = Vec::new();
    let mut code = Vec::new();
    for (nr, args) in calls {
        assert!(args.len() <= 5);
        for (i, arg) in args.iter().enumerate() {
            let value = match arg {
                Arg::Int(v) => *v,
                Arg::Bytes(bytes) => {
                    let at = BASE + (HEADERS + code_len + data.len()) as u64;
                    data.extend_from_slice(bytes);
                    data.push(0);
                    at
                }
            };
            code.extend_from_slice(&MOVABS[i]);
            code.extend_from_slice(&value.to_le_bytes());
        }
        code.push(0xb8); // mov eax, nr
        code.extend_from_slice(&nr.to_le_bytes());
        code.extend_from_slice(&[0x0f, 0x05]); // syscall
    }
    code.extend_from_slice(&[0x89, 0xc7]); // mov edi, eax
    code.extend_from_slice(&[0xf7, 0xdf]); // neg edi
    code.extend_from_slice(&[0xb8, 60, 0, 0, 0]); // mov eax, 60 (exit)
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    assert_eq!(code.len(), code_len);
    let total = (HEADERS + code.len() + data.len()) as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&(BASE + HEADERS as u64).to_le_bytes()); // entry
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend_from_slice(&half.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for word in [0, BASE, BASE, total, total, 0x1000] {
        elf.extend_from_slice(&word.to_le_bytes());
    }
    assert_eq!(elf.len(), HEADERS);
    elf.extend_from_slice(&code);
    elf.extend_from_slice(&data);
    elf
}
