//! Strings: `toString`, `substring`, `stringLength`, `concatStringsSep`,
//! `replaceStrings`, `split`, `match`, `baseNameOf`, `dirOf`,
//! `parseDrvName`, `compareVersions`, `splitVersion`, `toXML`.
//!
//! Strings are bytes, as in Nix: offsets and lengths count bytes, and a
//! string need not be UTF-8 (a `substring` may cut a character in two).
//! Results keep the context of the strings they were made from. Regular
//! expressions are POSIX extended ones in Nix, matched on bytes as Nix's
//! `std::regex` does (`.` is one byte); the `regex` crate's `bytes` engine
//! with Unicode off accepts that syntax for what package sets use (classes
//! like `[[:alpha:]]` included).

use std::cell::RefCell;
use std::cmp::Ordering;

use regex::bytes::Regex;
use rustc_hash::FxHashMap;

use super::Builtin;
use crate::coerce::Coercion;
use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::machine::Machine;
use crate::symbol::Symbol;
use crate::value::{Attrs, Context, List, NixString, Value};

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "toString",
        arity: 1,
        func: to_string,
    },
    Builtin {
        name: "substring",
        arity: 3,
        func: substring,
    },
    Builtin {
        name: "stringLength",
        arity: 1,
        func: string_length,
    },
    Builtin {
        name: "concatStringsSep",
        arity: 2,
        func: concat_strings_sep,
    },
    Builtin {
        name: "replaceStrings",
        arity: 3,
        func: replace_strings,
    },
    Builtin {
        name: "split",
        arity: 2,
        func: split,
    },
    Builtin {
        name: "match",
        arity: 2,
        func: regex_match,
    },
    Builtin {
        name: "baseNameOf",
        arity: 1,
        func: base_name_of,
    },
    Builtin {
        name: "dirOf",
        arity: 1,
        func: dir_of,
    },
    Builtin {
        name: "parseDrvName",
        arity: 1,
        func: parse_drv_name,
    },
    Builtin {
        name: "compareVersions",
        arity: 2,
        func: compare_versions,
    },
    Builtin {
        name: "splitVersion",
        arity: 1,
        func: split_version,
    },
    Builtin {
        name: "toXML",
        arity: 1,
        func: to_xml,
    },
];

fn invalid(msg: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::InvalidValue(msg.into()), None)
}

fn with_context_of(text: impl Into<crate::value::string::Text>, source: &NixString) -> NixString {
    NixString::with_context_of(text, source)
}

fn to_string(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    Ok(Value::String(
        m.coerce_to_string(&args[0], Coercion::ToString)?,
    ))
}

fn substring(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let start = m.force_int(&args[0])?;
    let len = m.force_int(&args[1])?;
    let s = m.coerce_to_string(&args[2], Coercion::Interpolate)?;
    if start < 0 {
        return Err(invalid("negative start position in 'substring'"));
    }
    let bytes = s.as_bytes();
    let start = (start as usize).min(bytes.len());
    let end = if len < 0 {
        bytes.len()
    } else {
        start.saturating_add(len as usize).min(bytes.len())
    };
    Ok(Value::String(with_context_of(&bytes[start..end], &s)))
}

fn string_length(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.coerce_to_string(&args[0], Coercion::Interpolate)?;
    Ok(Value::Int(s.as_bytes().len() as i64))
}

fn concat_strings_sep(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let sep = m.force_string(&args[0])?;
    let list = m.force_list(&args[1])?;
    let mut parts = Vec::with_capacity(list.len());
    let mut total = 0;
    for item in list.iter() {
        let s = m.coerce_to_string(item, Coercion::Interpolate)?;
        total += s.as_bytes().len() + sep.as_bytes().len();
        parts.push(s);
    }
    // One allocation for the result.
    let mut text = Vec::with_capacity(total);
    let mut context = Context::new();
    sep.merge_context_into(&mut context);
    for (i, s) in parts.iter().enumerate() {
        if i > 0 {
            text.extend_from_slice(sep.as_bytes());
        }
        text.extend_from_slice(s.as_bytes());
        s.merge_context_into(&mut context);
    }
    Ok(Value::String(NixString::with_context(text, context)))
}

fn replace_strings(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let from_list = m.force_list(&args[0])?;
    let to_list = m.force_list(&args[1])?;
    if from_list.len() != to_list.len() {
        return Err(invalid(
            "'from' and 'to' arguments to 'replaceStrings' have different lengths",
        ));
    }
    let mut from = Vec::with_capacity(from_list.len());
    for f in from_list.iter() {
        from.push(m.force_string(f)?);
    }
    // Every replacement is forced before the string, as in Nix 2.8.
    let mut to: Vec<Option<NixString>> = Vec::with_capacity(to_list.len());
    for t in to_list.iter() {
        to.push(Some(m.force_string(t)?));
    }
    let s = m.force_string(&args[2])?;
    let bytes = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut context = Context::new();
    s.merge_context_into(&mut context);
    let mut p = 0;
    while p <= bytes.len() {
        let mut found = false;
        for (i, pattern) in from.iter().enumerate() {
            let pat = pattern.as_bytes();
            if bytes[p..].starts_with(pat) {
                found = true;
                if to[i].is_none() {
                    to[i] = Some(m.force_string(&to_list.as_slice()[i])?);
                }
                if let Some(rep) = &to[i] {
                    out.extend_from_slice(rep.as_bytes());
                    rep.merge_context_into(&mut context);
                }
                if pat.is_empty() {
                    if p < bytes.len() {
                        out.push(bytes[p]);
                    }
                    p += 1;
                } else {
                    p += pat.len();
                }
                break;
            }
        }
        if !found {
            if p < bytes.len() {
                out.push(bytes[p]);
            }
            p += 1;
        }
    }
    Ok(Value::String(NixString::with_context(out, context)))
}

thread_local! {
    static REGEX_CACHE: RefCell<FxHashMap<(Vec<u8>, bool), Regex>> = RefCell::new(FxHashMap::default());
}

/// Compile (once) a POSIX extended regex; `whole` anchors it at both ends.
fn compile_regex(pattern: &[u8], whole: bool) -> EvalResult<Regex> {
    let key = (pattern.to_owned(), whole);
    if let Some(re) = REGEX_CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(re);
    }
    // Bytes, as Nix's `std::regex` over `char`: every byte that is not
    // ASCII is written as an escape, so `[é]` is a class of two bytes and
    // a pattern need not be UTF-8.
    let mut ascii = String::with_capacity(pattern.len());
    for &b in pattern {
        if b.is_ascii() {
            ascii.push(b as char);
        } else {
            ascii.push_str(&format!("\\x{b:02X}"));
        }
    }
    // POSIX extended, as Nix's: `.` matches a newline too (`(?s)`), and
    // any one byte (`-u`).
    let source = if whole {
        format!("(?s-u)^(?:{ascii})$")
    } else {
        format!("(?s-u){ascii}")
    };
    let re = Regex::new(&source).map_err(|e| {
        invalid(format!(
            "invalid regular expression '{}': {e}",
            String::from_utf8_lossy(pattern)
        ))
    })?;
    REGEX_CACHE.with(|c| c.borrow_mut().insert(key, re.clone()));
    Ok(re)
}

fn captures_list(caps: &regex::bytes::Captures<'_>) -> Value {
    let groups = (1..caps.len())
        .map(|i| match caps.get(i) {
            Some(g) => Value::string(g.as_bytes()),
            None => Value::Null,
        })
        .collect();
    Value::List(List::new(groups))
}

fn regex_match(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let pattern = m.force_string(&args[0])?;
    let s = m.force_string(&args[1])?;
    let re = compile_regex(pattern.as_bytes(), true)?;
    Ok(match re.captures(s.as_bytes()) {
        Some(caps) => captures_list(&caps),
        None => Value::Null,
    })
}

fn split(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let pattern = m.force_string(&args[0])?;
    let s = m.force_string(&args[1])?;
    let re = compile_regex(pattern.as_bytes(), false)?;
    let text = s.as_bytes();
    let mut out = Vec::new();
    let mut last = 0;
    // The matches as Nix 2.8's `std::sregex_iterator` finds them: after a
    // non-empty match, an empty one right at its end counts (Rust's own
    // iterator skips it: `split "(.*)" "abc"` has two matches); after an
    // empty match the search goes on one byte further.
    let mut pos = 0;
    while let Some(caps) = re.captures_at(text, pos) {
        let Some(whole) = caps.get(0) else { break };
        out.push(Value::string(&text[last..whole.start()]));
        out.push(captures_list(&caps));
        last = whole.end();
        if !whole.is_empty() {
            pos = whole.end();
        } else if whole.end() < text.len() {
            pos = whole.end() + 1;
        } else {
            break;
        }
    }
    out.push(Value::string(&text[last..]));
    Ok(Value::List(List::new(out)))
}

fn base_name_of(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.coerce_to_string(&args[0], Coercion::PathPart)?;
    let text = s.as_bytes();
    let trimmed = text.strip_suffix(b"/").unwrap_or(text);
    let base = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    };
    Ok(Value::String(with_context_of(base, &s)))
}

fn dir_name(text: &[u8]) -> &[u8] {
    match text.iter().rposition(|&b| b == b'/') {
        None => b".",
        Some(0) => b"/",
        Some(i) => &text[..i],
    }
}

fn dir_of(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let v = m.force(&args[0])?;
    if let Value::Path(p) = &v {
        use std::os::unix::ffi::OsStrExt;
        let parent = dir_name(p.as_os_str().as_bytes());
        return Ok(Value::path(std::ffi::OsStr::from_bytes(parent)));
    }
    let s = m.coerce_to_string(&v, Coercion::PathPart)?;
    Ok(Value::String(with_context_of(dir_name(s.as_bytes()), &s)))
}

fn parse_drv_name(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    // Nix 2.8 takes a string here, not anything that coerces to one.
    let s = m.force_string(&args[0])?;
    let bytes = s.as_bytes();
    let split_at = (0..bytes.len())
        .find(|&i| bytes[i] == b'-' && i + 1 < bytes.len() && !bytes[i + 1].is_ascii_alphabetic());
    let (name, version): (&[u8], &[u8]) = match split_at {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, b""),
    };
    Ok(Value::Attrs(Attrs::from_entries(vec![
        (Symbol::intern("name"), Value::string(name)),
        (Symbol::intern("version"), Value::string(version)),
    ])))
}

/// The next version component after `*pos`: a run of digits, or a run of
/// other characters up to a separator (`.` or `-`, which are skipped).
fn next_component<'a>(s: &'a str, pos: &mut usize) -> &'a str {
    let bytes = s.as_bytes();
    while *pos < bytes.len() && (bytes[*pos] == b'.' || bytes[*pos] == b'-') {
        *pos += 1;
    }
    let start = *pos;
    if *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
        while *pos < bytes.len() && bytes[*pos].is_ascii_digit() {
            *pos += 1;
        }
    } else {
        while *pos < bytes.len()
            && !bytes[*pos].is_ascii_digit()
            && bytes[*pos] != b'.'
            && bytes[*pos] != b'-'
        {
            *pos += 1;
        }
    }
    &s[start..*pos]
}

fn component_less(a: &str, b: &str) -> bool {
    let na: Option<i64> = a.parse().ok().filter(|_| !a.is_empty());
    let nb: Option<i64> = b.parse().ok().filter(|_| !b.is_empty());
    match (na, nb) {
        (Some(x), Some(y)) => x < y,
        _ if a.is_empty() && nb.is_some() => true,
        _ if a == "pre" && b != "pre" => true,
        _ if b == "pre" => false,
        (_, Some(_)) => true,
        (Some(_), _) => false,
        _ => a < b,
    }
}

/// Nix's version ordering.
pub fn compare_version_strings(a: &str, b: &str) -> Ordering {
    let (mut pa, mut pb) = (0, 0);
    while pa < a.len() || pb < b.len() {
        let ca = next_component(a, &mut pa);
        let cb = next_component(b, &mut pb);
        if component_less(ca, cb) {
            return Ordering::Less;
        }
        if component_less(cb, ca) {
            return Ordering::Greater;
        }
    }
    Ordering::Equal
}

fn compare_versions(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let a = m.force_string(&args[0])?;
    let b = m.force_string(&args[1])?;
    Ok(Value::Int(
        match compare_version_strings(a.as_str(), b.as_str()) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        },
    ))
}

fn split_version(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    let s = m.force_string(&args[0])?;
    let text = s.as_str();
    let mut pos = 0;
    let mut parts = Vec::new();
    while pos < text.len() {
        let c = next_component(text, &mut pos);
        if c.is_empty() {
            break;
        }
        parts.push(Value::string(c));
    }
    Ok(Value::List(List::new(parts)))
}

fn to_xml(m: &mut Machine, args: &[Value]) -> EvalResult<Value> {
    Ok(Value::string(crate::xml::to_xml_bytes(m, &args[0])?))
}

#[cfg(test)]
mod tests {
    use crate::builtins::testing::eval_str;

    #[test]
    fn a_dot_in_a_regular_expression_matches_a_newline_as_in_nix() {
        // Expected value from Nix 2.8.
        assert_eq!(eval_str(r#"builtins.match "a.b" "a\nb""#).unwrap(), "[ ]");
    }

    #[test]
    fn versions_compare_like_nix() {
        assert_eq!(
            eval_str(r#"map (p: builtins.compareVersions (builtins.elemAt p 0) (builtins.elemAt p 1)) [ ["1.0" "2.3"] ["2.1" "2.3"] ["2.3" "2.3"] ["2.5" "2.3"] ["3.1" "2.3"] ["2.3.1" "2.3"] ["2.3.1" "2.3a"] ["2.3pre1" "2.3"] ["2.3pre3" "2.3pre12"] ["2.3a" "2.3c"] ["2.3pre1" "2.3c"] ["2.3pre1" "2.3q"] ]"#).unwrap(),
            "[ -1 -1 0 1 1 1 1 -1 -1 -1 -1 -1 ]"
        );
        assert_eq!(
            eval_str(r#"builtins.splitVersion "1.2.3-pre4a""#).unwrap(),
            r#"[ "1" "2" "3" "pre" "4" "a" ]"#
        );
    }

    #[test]
    fn replace_and_substring() {
        assert_eq!(
            eval_str(r#"builtins.replaceStrings ["o" "a"] ["0" ""] "foobar""#).unwrap(),
            r#""f00br""#
        );
        assert_eq!(
            eval_str(r#"builtins.replaceStrings [""] ["X"] "ab""#).unwrap(),
            r#""XaXbX""#
        );
        assert_eq!(
            eval_str(r#"builtins.substring 1 2 "hello""#).unwrap(),
            r#""el""#
        );
        assert!(eval_str(r#"builtins.substring (-1) 2 "x""#).is_err());
    }

    #[test]
    fn regexes_match_whole_and_split_with_groups() {
        assert_eq!(
            eval_str(r#"builtins.match "a(b)?(c)" "ac""#).unwrap(),
            "[ null \"c\" ]"
        );
        assert_eq!(eval_str(r#"builtins.match "a" "ab""#).unwrap(), "null");
        assert_eq!(
            eval_str(r#"builtins.split "(a)|b" "xaybz""#).unwrap(),
            r#"[ "x" [ "a" ] "y" [ null ] "z" ]"#
        );
    }

    #[test]
    fn drv_names_split_at_the_version() {
        assert_eq!(
            eval_str(r#"builtins.parseDrvName "nix-0.12pre12876""#).unwrap(),
            r#"{ name = "nix"; version = "0.12pre12876"; }"#
        );
    }
}
