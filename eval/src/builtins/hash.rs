//! Hashes: `hashString` and `hashFile` (md5, sha1, sha256, sha512; the
//! result in base-16).

use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::Builtin;
use crate::builtins::control::path_argument;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::value::Value;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "hashString",
        arity: 2,
        func: hash_string,
    },
    Builtin {
        name: "hashFile",
        arity: 2,
        func: hash_file,
    },
];

/// The base-16 digest of `data` with the named algorithm.
pub fn hex_digest(algo: &str, data: &[u8]) -> EvalResult<String> {
    Ok(match algo {
        "md5" => hex::encode(Md5::digest(data)),
        "sha1" => hex::encode(Sha1::digest(data)),
        "sha256" => hex::encode(Sha256::digest(data)),
        "sha512" => hex::encode(Sha512::digest(data)),
        other => {
            return Err(EvalError::new(
                ErrorKind::InvalidValue(format!("unknown hash algorithm '{other}'")),
                None,
            ));
        }
    })
}

fn hash_string(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let algo = m.force_string(&args[0])?;
    let s = m.force_string(&args[1])?;
    Ok(Value::string(hex_digest(algo.as_str(), s.as_bytes())?))
}

fn hash_file(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let algo = m.force_string(&args[0])?;
    let path = path_argument(m, &args[1])?;
    let data = m.io.read_file(&path).map_err(|e| {
        EvalError::new(
            ErrorKind::Io(format!("reading '{}': {e}", path.display())),
            None,
        )
    })?;
    Ok(Value::string(hex_digest(algo.as_str(), &data)?))
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn known_digests() {
        assert_eq!(
            eval_str(r#"builtins.hashString "sha256" "abc""#).unwrap(),
            r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#
        );
        assert_eq!(
            eval_str(r#"builtins.hashString "md5" """#).unwrap(),
            r#""d41d8cd98f00b204e9800998ecf8427e""#
        );
        assert!(eval_str(r#"builtins.hashString "crc" "x""#).is_err());
    }
}
