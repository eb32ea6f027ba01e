//! The ATerm grammar of a `.drv` file, parsed with nom into [`RawDerivation`]:
//! strings with their byte positions, in file order, not yet checked for
//! meaning. [`super::validate`] turns that into a [`super::Derivation`].
//!
//! The whole input must be consumed (`all_consuming`): a trailing newline or
//! any other byte after the final `)` is an error, because Nix never writes
//! one and a byte-identical round trip could not reproduce it.
//!
//! Strings accept exactly the escapes Nix writes (`\"`, `\\`, `\n`, `\r`,
//! `\t`). Nix's own reader also takes `\x` as `x` for any other byte, but no
//! Nix writes that, and accepting it would break the guarantee that
//! `write(parse(bytes)) == bytes`, so such an escape is rejected.

use nom::{
    Err, IResult,
    bytes::complete::tag,
    combinator::all_consuming,
    error::{ErrorKind, ParseError},
};

use super::error::DerivationError;

/// One quoted string of the ATerm, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawString<'a> {
    /// Byte offset of the opening quote in the whole input.
    pub pos: usize,
    /// The bytes between the quotes, escapes still in place.
    pub raw: &'a [u8],
}

impl RawString<'_> {
    /// Whether the string was written with at least one escape sequence.
    pub fn has_escape(&self) -> bool {
        self.raw.contains(&b'\\')
    }

    /// The value with escapes resolved. The parser has already checked that
    /// every escape is one of the five Nix writes.
    pub fn unescape(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len());
        let mut bytes = self.raw.iter();
        while let Some(&b) = bytes.next() {
            if b != b'\\' {
                out.push(b);
                continue;
            }
            match bytes.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b'r') => out.push(b'\r'),
                Some(b't') => out.push(b'\t'),
                Some(&other) => out.push(other),
                None => {}
            }
        }
        out
    }
}

/// `("name","path","hashAlgo","hash")`
#[derive(Debug, Clone)]
pub(crate) struct RawOutput<'a> {
    pub name: RawString<'a>,
    pub path: RawString<'a>,
    pub hash_algo: RawString<'a>,
    pub hash: RawString<'a>,
}

/// `("/store/…drv",["out",…])`
#[derive(Debug, Clone)]
pub(crate) struct RawInputDrv<'a> {
    pub path: RawString<'a>,
    pub outputs: Vec<RawString<'a>>,
}

/// The seven fields of `Derive(…)`, in file order.
#[derive(Debug, Clone)]
pub(crate) struct RawDerivation<'a> {
    pub outputs: Vec<RawOutput<'a>>,
    pub input_drvs: Vec<RawInputDrv<'a>>,
    pub input_srcs: Vec<RawString<'a>>,
    pub system: RawString<'a>,
    pub builder: RawString<'a>,
    pub args: Vec<RawString<'a>>,
    pub env: Vec<(RawString<'a>, RawString<'a>)>,
}

/// What went wrong, and where (`input` is the rest of the input at the fault).
#[derive(Debug)]
pub(crate) struct SyntaxError<'a> {
    input: &'a [u8],
    kind: SyntaxKind,
}

#[derive(Debug, Clone, Copy)]
enum SyntaxKind {
    Expected(&'static str),
    /// `input` starts at the opening quote.
    UnterminatedString,
    /// `input` starts at the backslash.
    BadEscape(u8),
    TrailingData,
}

impl<'a> ParseError<&'a [u8]> for SyntaxError<'a> {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        let kind = match kind {
            ErrorKind::Eof => SyntaxKind::TrailingData,
            _ => SyntaxKind::Expected("valid ATerm"),
        };
        SyntaxError { input, kind }
    }

    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a [u8], T, SyntaxError<'a>>;

/// Parse a whole `.drv` file. Positions in errors are byte offsets in `input`.
pub(crate) fn parse_raw(input: &[u8]) -> Result<RawDerivation<'_>, DerivationError> {
    let mut parser = all_consuming(|i| derive(input, i));
    match parser(input) {
        Ok((_, drv)) => Ok(drv),
        Err(Err::Error(e) | Err::Failure(e)) => Err(syntax_error(input, e)),
        // Only streaming parsers return Incomplete; every parser here is complete.
        Err(Err::Incomplete(_)) => Err(DerivationError::Expected {
            pos: input.len(),
            expected: "more input",
        }),
    }
}

fn syntax_error(full: &[u8], e: SyntaxError<'_>) -> DerivationError {
    let pos = full.len() - e.input.len();
    match e.kind {
        SyntaxKind::Expected(expected) => {
            if e.input.is_empty() {
                DerivationError::UnexpectedEnd { pos, expected }
            } else {
                DerivationError::Expected { pos, expected }
            }
        }
        SyntaxKind::UnterminatedString => DerivationError::UnterminatedString { pos },
        SyntaxKind::BadEscape(byte) => DerivationError::BadEscape { pos, byte },
        SyntaxKind::TrailingData => DerivationError::TrailingData { pos },
    }
}

/// A fixed token, reported by name when absent.
fn lit<'a>(token: &'static str) -> impl FnMut(&'a [u8]) -> Res<'a, ()> {
    move |input| match tag::<_, _, SyntaxError<'a>>(token.as_bytes())(input) {
        Ok((rest, _)) => Ok((rest, ())),
        Err(e) => Err(e.map(|err| SyntaxError {
            input: err.input,
            kind: SyntaxKind::Expected(token),
        })),
    }
}

/// `[item,item,…]`, possibly empty. Hand-written rather than
/// `separated_list0` so that an error inside an item is reported where it
/// happens, not as a missing `]` at the preceding comma.
fn list<'a, T>(
    mut item: impl FnMut(&'a [u8]) -> Res<'a, T>,
) -> impl FnMut(&'a [u8]) -> Res<'a, Vec<T>> {
    move |input| {
        let (mut rest, ()) = lit("[")(input)?;
        let mut items = Vec::new();
        if let Some(after) = rest.strip_prefix(b"]") {
            return Ok((after, items));
        }
        loop {
            let (after_item, value) = item(rest)?;
            items.push(value);
            match after_item.first() {
                Some(b',') => rest = &after_item[1..],
                Some(b']') => return Ok((&after_item[1..], items)),
                _ => {
                    return Err(Err::Error(SyntaxError {
                        input: after_item,
                        kind: SyntaxKind::Expected("',' or ']'"),
                    }));
                }
            }
        }
    }
}

/// A quoted string. Once the opening quote is seen, a missing closing quote or
/// an unknown escape is fatal (`Failure`): there is no other way to read it.
fn string<'a>(full: &'a [u8]) -> impl FnMut(&'a [u8]) -> Res<'a, RawString<'a>> {
    move |input| {
        let (body, ()) = lit("\"")(input)?;
        let pos = full.len() - input.len();
        let mut i = 0;
        loop {
            match body[i..].iter().position(|&b| b == b'"' || b == b'\\') {
                None => {
                    return Err(Err::Failure(SyntaxError {
                        input,
                        kind: SyntaxKind::UnterminatedString,
                    }));
                }
                Some(found) => {
                    let at = i + found;
                    if body[at] == b'"' {
                        let raw = &body[..at];
                        return Ok((&body[at + 1..], RawString { pos, raw }));
                    }
                    match body.get(at + 1) {
                        Some(b'"' | b'\\' | b'n' | b'r' | b't') => i = at + 2,
                        Some(&other) => {
                            return Err(Err::Failure(SyntaxError {
                                input: &body[at..],
                                kind: SyntaxKind::BadEscape(other),
                            }));
                        }
                        None => {
                            return Err(Err::Failure(SyntaxError {
                                input,
                                kind: SyntaxKind::UnterminatedString,
                            }));
                        }
                    }
                }
            }
        }
    }
}

fn output<'a>(full: &'a [u8]) -> impl FnMut(&'a [u8]) -> Res<'a, RawOutput<'a>> {
    move |input| {
        let (input, ()) = lit("(")(input)?;
        let (input, name) = string(full)(input)?;
        let (input, ()) = lit(",")(input)?;
        let (input, path) = string(full)(input)?;
        let (input, ()) = lit(",")(input)?;
        let (input, hash_algo) = string(full)(input)?;
        let (input, ()) = lit(",")(input)?;
        let (input, hash) = string(full)(input)?;
        let (input, ()) = lit(")")(input)?;
        let raw = RawOutput {
            name,
            path,
            hash_algo,
            hash,
        };
        Ok((input, raw))
    }
}

fn input_drv<'a>(full: &'a [u8]) -> impl FnMut(&'a [u8]) -> Res<'a, RawInputDrv<'a>> {
    move |input| {
        let (input, ()) = lit("(")(input)?;
        let (input, path) = string(full)(input)?;
        let (input, ()) = lit(",")(input)?;
        let (input, outputs) = list(string(full))(input)?;
        let (input, ()) = lit(")")(input)?;
        Ok((input, RawInputDrv { path, outputs }))
    }
}

type RawPair<'a> = (RawString<'a>, RawString<'a>);

fn env_pair<'a>(full: &'a [u8]) -> impl FnMut(&'a [u8]) -> Res<'a, RawPair<'a>> {
    move |input| {
        let (input, ()) = lit("(")(input)?;
        let (input, key) = string(full)(input)?;
        let (input, ()) = lit(",")(input)?;
        let (input, value) = string(full)(input)?;
        let (input, ()) = lit(")")(input)?;
        Ok((input, (key, value)))
    }
}

/// `Derive([outputs],[inputDrvs],[inputSrcs],"system","builder",[args],[env])`
fn derive<'a>(full: &'a [u8], input: &'a [u8]) -> Res<'a, RawDerivation<'a>> {
    let (input, ()) = lit("Derive(")(input)?;
    let (input, outputs) = list(output(full))(input)?;
    let (input, ()) = lit(",")(input)?;
    let (input, input_drvs) = list(input_drv(full))(input)?;
    let (input, ()) = lit(",")(input)?;
    let (input, input_srcs) = list(string(full))(input)?;
    let (input, ()) = lit(",")(input)?;
    let (input, system) = string(full)(input)?;
    let (input, ()) = lit(",")(input)?;
    let (input, builder) = string(full)(input)?;
    let (input, ()) = lit(",")(input)?;
    let (input, args) = list(string(full))(input)?;
    let (input, ()) = lit(",")(input)?;
    let (input, env) = list(env_pair(full))(input)?;
    let (input, ()) = lit(")")(input)?;
    let raw = RawDerivation {
        outputs,
        input_drvs,
        input_srcs,
        system,
        builder,
        args,
        env,
    };
    Ok((input, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> DerivationError {
        match parse_raw(input.as_bytes()) {
            Ok(raw) => panic!("{input:?} parsed: {raw:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn minimal_derivation_parses_with_positions() {
        let text = r#"Derive([("out","/s/x","","")],[],[],"sys","b\"\\\n",["a"],[("k","v")])"#;
        let raw = parse_raw(text.as_bytes()).expect("parses");
        assert_eq!(raw.outputs.len(), 1);
        assert_eq!(raw.outputs[0].name.pos, 9);
        assert_eq!(raw.outputs[0].name.raw, b"out");
        assert_eq!(raw.builder.unescape(), b"b\"\\\n");
        assert!(raw.builder.has_escape());
        assert!(!raw.system.has_escape());
        assert_eq!(raw.env[0].1.raw, b"v");
    }

    #[test]
    fn syntax_errors_carry_positions() {
        let ok = r#"Derive([],[],[],"s","b",[],[])"#;
        assert!(parse_raw(ok.as_bytes()).is_ok());
        assert_eq!(
            err(&format!("{ok}\n")),
            DerivationError::TrailingData { pos: ok.len() }
        );
        assert_eq!(
            err(r#"Derive([],[],[],"s,"b",[],[])"#),
            DerivationError::Expected {
                pos: 20,
                expected: ","
            }
        );
        assert_eq!(
            err(r#"Derive([],[],[],"s","b",[],[])"#.trim_end_matches(")")),
            DerivationError::UnexpectedEnd {
                pos: 29,
                expected: ")"
            }
        );
        assert_eq!(
            err(r#"Derive([],[],[],"s","unterminated"#),
            DerivationError::UnterminatedString { pos: 20 }
        );
        assert_eq!(
            err(r#"Derive([],[],[],"s","b\x",[],[])"#),
            DerivationError::BadEscape {
                pos: 22,
                byte: b'x'
            }
        );
        assert_eq!(
            err(r#"Derive([],[],["a" "b"],"s","b",[],[])"#),
            DerivationError::Expected {
                pos: 17,
                expected: "',' or ']'"
            }
        );
    }
}
