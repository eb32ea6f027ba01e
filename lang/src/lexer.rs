//! The lexical level: Nix 2.8's tokens, recognised with nom on bytes.
//!
//! # Tokens (as Nix 2.8's flex lexer defines them)
//!
//! ```text
//! ID     [a-zA-Z_][a-zA-Z0-9_'-]*           (keywords: if then else assert
//!                                            with let in rec inherit or)
//! INT    [0-9]+
//! FLOAT  (([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+-]?[0-9]+)?
//! PCHAR  [a-zA-Z0-9._+-]
//! PATH   PCHAR*(/PCHAR+)+/?      or   PCHAR*/ directly followed by ${
//! HPATH  ~(/PCHAR+)+/?           or   ~/ directly followed by ${
//! SPATH  <PCHAR+(/PCHAR+)*>
//! URI    [a-zA-Z][a-zA-Z0-9+.-]*:[a-zA-Z0-9%/?:@&=+$,_.!~*'-]+
//! space  [ \t\r\n]+   comments  #… to end of line, /* … */
//! ```
//!
//! plus the operators and punctuation. As in flex, the **longest match
//! wins** and ties go to the rule listed first (keywords before ID). That
//! is what makes `a/b` a path, `x:x` a URI (while `x: x` is a lambda),
//! `<a>` a search path, `a.5` the application `a 0.5`, and `1e3` the
//! integer `1` followed by the identifier `e3`.
//!
//! Strings, indented strings and the continuation of paths after their
//! first segment depend on context, so the parser scans those itself with
//! the helpers at the end of this file; this lexer only reports where they
//! start.

use nom::IResult;
use nom::bytes::complete::{take_while, take_while_m_n, take_while1};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};

/// What a token is. Its text is `src[start..end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    Id,
    Int,
    Float,
    /// The first segment of a path (`./a/b`, or `a/` before `${`); the
    /// parser continues the path from `end`.
    Path,
    /// `~/a` (or `~/` before `${`).
    HomePath,
    /// `<name>`.
    SearchPath,
    Uri,
    /// `"`: the parser scans the string body.
    Quote,
    /// `''` plus an immediately following run of spaces and a newline, if
    /// any: the parser scans the indented string body.
    IndOpen,
    /// `${`
    DollarCurly,
    If,
    Then,
    Else,
    Assert,
    With,
    Let,
    In,
    Rec,
    Inherit,
    OrKw,
    Ellipsis,
    Eq,
    Ne,
    Le,
    Ge,
    And,
    Or,
    Impl,
    Update,
    Concat,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Semi,
    Colon,
    Comma,
    At,
    Dot,
    Question,
    Assign,
    Lt,
    Gt,
    Plus,
    Minus,
    Star,
    Slash,
    Not,
    Eof,
}

impl Tok {
    /// How error messages name the token.
    pub fn describe(self) -> &'static str {
        match self {
            Tok::Id => "an identifier",
            Tok::Int => "an integer",
            Tok::Float => "a float",
            Tok::Path | Tok::HomePath => "a path",
            Tok::SearchPath => "a search path",
            Tok::Uri => "a URI",
            Tok::Quote => "a string",
            Tok::IndOpen => "an indented string",
            Tok::DollarCurly => "'${'",
            Tok::If => "'if'",
            Tok::Then => "'then'",
            Tok::Else => "'else'",
            Tok::Assert => "'assert'",
            Tok::With => "'with'",
            Tok::Let => "'let'",
            Tok::In => "'in'",
            Tok::Rec => "'rec'",
            Tok::Inherit => "'inherit'",
            Tok::OrKw => "'or'",
            Tok::Ellipsis => "'...'",
            Tok::Eq => "'=='",
            Tok::Ne => "'!='",
            Tok::Le => "'<='",
            Tok::Ge => "'>='",
            Tok::And => "'&&'",
            Tok::Or => "'||'",
            Tok::Impl => "'->'",
            Tok::Update => "'//'",
            Tok::Concat => "'++'",
            Tok::LBrace => "'{'",
            Tok::RBrace => "'}'",
            Tok::LBracket => "'['",
            Tok::RBracket => "']'",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::Semi => "';'",
            Tok::Colon => "':'",
            Tok::Comma => "','",
            Tok::At => "'@'",
            Tok::Dot => "'.'",
            Tok::Question => "'?'",
            Tok::Assign => "'='",
            Tok::Lt => "'<'",
            Tok::Gt => "'>'",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::Star => "'*'",
            Tok::Slash => "'/'",
            Tok::Not => "'!'",
            Tok::Eof => "end of file",
        }
    }
}

/// A token and its byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: u32,
    pub end: u32,
}

/// Something no token starts with, or an unterminated comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub start: u32,
    pub end: u32,
    pub message: String,
}

pub fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+')
}

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'\'' | b'-')
}

fn is_uri_scheme_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')
}

fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'%' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'~'
                | b'*'
                | b'\''
        )
}

fn digits0(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while(|b: u8| b.is_ascii_digit())(i)
}

fn digits1(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b.is_ascii_digit())(i)
}

fn one(pred: impl Fn(u8) -> bool) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |i| take_while_m_n(1, 1, &pred)(i)
}

fn byte(b: u8) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |i| take_while_m_n(1, 1, |c| c == b)(i)
}

/// Length of the nom parser's match at the start of `i`, if it matches.
fn match_len<'a>(i: &'a [u8], p: impl Fn(&'a [u8]) -> IResult<&'a [u8], &'a [u8]>) -> usize {
    match p(i) {
        Ok((_, m)) => m.len(),
        Err(_) => 0,
    }
}

/// `ID`.
fn ident(i: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(pair(one(is_id_start), take_while(is_id_char)))(i)
}

/// The exponent of a float.
fn exponent(i: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(tuple((
        one(|b| b == b'e' || b == b'E'),
        opt(one(|b| b == b'+' || b == b'-')),
        digits1,
    )))(i)
}

/// `FLOAT`.
fn float(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let leading = recognize(tuple((
        one(|b| (b'1'..=b'9').contains(&b)),
        digits0,
        byte(b'.'),
        digits0,
    )));
    let fraction = recognize(tuple((opt(byte(b'0')), byte(b'.'), digits1)));
    recognize(pair(nom::branch::alt((leading, fraction)), opt(exponent)))(i)
}

/// `SPATH`.
fn search_path(i: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(tuple((
        byte(b'<'),
        take_while1(is_path_char),
        nom::multi::many0_count(pair(byte(b'/'), take_while1(is_path_char))),
        byte(b'>'),
    )))(i)
}

/// `(/PCHAR+)*` then an optional trailing `/`: the length and how many
/// `/segment`s matched.
fn slash_segments(i: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    let mut count = 0;
    while i.get(pos) == Some(&b'/') {
        let run = i[pos + 1..]
            .iter()
            .take_while(|&&b| is_path_char(b))
            .count();
        if run == 0 {
            break;
        }
        pos += 1 + run;
        count += 1;
    }
    (pos, count)
}

/// Length of a path start (`PATH`, or `PATH_SEG` followed by `${`) at `i`,
/// given the length `run` of the `PCHAR*` run at its start.
fn path_start_len(i: &[u8], run: usize) -> usize {
    let (segs_len, segs) = slash_segments(&i[run..]);
    let end = run + segs_len;
    if segs > 0 {
        return if i.get(end) == Some(&b'/') {
            end + 1
        } else {
            end
        };
    }
    if i.get(end) == Some(&b'/') && i[end + 1..].starts_with(b"${") {
        return end + 1;
    }
    0
}

/// Length of a home path start (`HPATH`, or `~/` followed by `${`).
fn home_path_len(i: &[u8]) -> usize {
    if i.first() != Some(&b'~') {
        return 0;
    }
    let (segs_len, segs) = slash_segments(&i[1..]);
    let end = 1 + segs_len;
    if segs > 0 {
        return if i.get(end) == Some(&b'/') {
            end + 1
        } else {
            end
        };
    }
    if i[1..].starts_with(b"/${") {
        return 2;
    }
    0
}

/// Length of the next piece of a path after its start, as flex's
/// `PATH|PATH_SEG|PCHAR+` (longest) in its in-path states; 0 if none.
pub fn path_piece_len(i: &[u8]) -> usize {
    let run = i.iter().take_while(|&&b| is_path_char(b)).count();
    let (segs_len, segs) = slash_segments(&i[run..]);
    let mut best = run;
    if segs > 0 {
        let mut end = run + segs_len;
        if i.get(end) == Some(&b'/') {
            end += 1;
        }
        best = best.max(end);
    }
    if i.get(run) == Some(&b'/') {
        best = best.max(run + 1);
    }
    best
}

fn keyword(text: &[u8]) -> Option<Tok> {
    Some(match text {
        b"if" => Tok::If,
        b"then" => Tok::Then,
        b"else" => Tok::Else,
        b"assert" => Tok::Assert,
        b"with" => Tok::With,
        b"let" => Tok::Let,
        b"in" => Tok::In,
        b"rec" => Tok::Rec,
        b"inherit" => Tok::Inherit,
        b"or" => Tok::OrKw,
        _ => return None,
    })
}

/// Skips whitespace and comments from `pos`; returns the new position.
pub fn skip_trivia(src: &[u8], mut pos: usize) -> Result<usize, LexError> {
    loop {
        match src.get(pos) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => pos += 1,
            Some(b'#') => {
                pos += src[pos..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .unwrap_or(src.len() - pos);
            }
            Some(b'/') if src.get(pos + 1) == Some(&b'*') => match find(&src[pos + 2..], b"*/") {
                Some(off) => pos += 2 + off + 2,
                None => {
                    return Err(LexError {
                        start: pos as u32,
                        end: pos as u32 + 2,
                        message: "unterminated comment: '/*' without '*/'".into(),
                    });
                }
            },
            _ => return Ok(pos),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Remembers where the current run of path characters (and of URI scheme
/// characters) ends. Without it, `a.a.a.a…` would rescan the rest of the
/// run at every identifier to see whether a `/` (a path) or `:` (a URI)
/// follows, which is quadratic.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunCache {
    path_run: (usize, usize),
    scheme_run: (usize, usize),
}

impl RunCache {
    fn run_end(
        range: &mut (usize, usize),
        src: &[u8],
        pos: usize,
        pred: impl Fn(u8) -> bool,
    ) -> usize {
        if range.0 <= pos && pos < range.1 {
            return range.1;
        }
        let end = pos + src[pos..].iter().take_while(|&&b| pred(b)).count();
        *range = (pos, end);
        end
    }

    /// Length of the run of `PCHAR`s starting at `pos`.
    fn path_run(&mut self, src: &[u8], pos: usize) -> usize {
        Self::run_end(&mut self.path_run, src, pos, is_path_char) - pos
    }

    /// Length of the run of URI scheme characters starting at `pos`.
    fn scheme_run(&mut self, src: &[u8], pos: usize) -> usize {
        Self::run_end(&mut self.scheme_run, src, pos, is_uri_scheme_char) - pos
    }
}

/// Length of a URI at `pos` whose scheme run (`[a-zA-Z0-9+.-]*` from
/// `pos`) is `scheme` bytes long.
fn uri_len(src: &[u8], pos: usize, scheme: usize) -> usize {
    if !src[pos].is_ascii_alphabetic() {
        return 0;
    }
    let after = &src[pos + scheme..];
    match uri_rest(after) {
        Ok((_, m)) => scheme + m.len(),
        Err(_) => 0,
    }
}

/// `:` and the rest of a URI after its scheme.
fn uri_rest(i: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(pair(byte(b':'), take_while1(is_uri_char)))(i)
}

/// Reads the token starting exactly at `pos` (trivia already skipped).
pub fn token_at(src: &[u8], pos: usize, cache: &mut RunCache) -> Result<Token, LexError> {
    let rest = &src[pos..];
    let Some(&first) = rest.first() else {
        return Ok(Token {
            kind: Tok::Eof,
            start: pos as u32,
            end: pos as u32,
        });
    };
    let (kind, len) = match first {
        b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
            let id = match_len(rest, ident);
            let path = path_start_len(rest, cache.path_run(src, pos));
            let uri = if first == b'_' {
                0
            } else {
                uri_len(src, pos, cache.scheme_run(src, pos))
            };
            if path > id && path >= uri {
                (Tok::Path, path)
            } else if uri > id {
                (Tok::Uri, uri)
            } else {
                (keyword(&rest[..id]).unwrap_or(Tok::Id), id)
            }
        }
        b'0'..=b'9' | b'.' | b'+' | b'-' => {
            let path = path_start_len(rest, cache.path_run(src, pos));
            let num_float = match_len(rest, float);
            let num_int = match_len(rest, digits0);
            let op = match rest {
                [b'.', b'.', b'.', ..] => (Tok::Ellipsis, 3),
                [b'+', b'+', ..] => (Tok::Concat, 2),
                [b'-', b'>', ..] => (Tok::Impl, 2),
                [b'.', ..] => (Tok::Dot, 1),
                [b'+', ..] => (Tok::Plus, 1),
                [b'-', ..] => (Tok::Minus, 1),
                _ => (Tok::Eof, 0),
            };
            // Longest match; ties: operators, then INT, then FLOAT, then PATH.
            let mut best = op;
            if num_int > best.1 {
                best = (Tok::Int, num_int);
            }
            if num_float > best.1 {
                best = (Tok::Float, num_float);
            }
            if path > best.1 {
                best = (Tok::Path, path);
            }
            best
        }
        b'/' => {
            let path = path_start_len(rest, 0);
            if rest.starts_with(b"//") {
                (Tok::Update, 2)
            } else if path > 0 {
                (Tok::Path, path)
            } else {
                (Tok::Slash, 1)
            }
        }
        b'~' => match home_path_len(rest) {
            0 => return Err(unexpected_char(src, pos)),
            n => (Tok::HomePath, n),
        },
        b'<' => match match_len(rest, search_path) {
            0 if rest.starts_with(b"<=") => (Tok::Le, 2),
            0 => (Tok::Lt, 1),
            n => (Tok::SearchPath, n),
        },
        b'\'' if rest.starts_with(b"''") => {
            let spaces = rest[2..].iter().take_while(|&&b| b == b' ').count();
            if rest.get(2 + spaces) == Some(&b'\n') {
                (Tok::IndOpen, 2 + spaces + 1)
            } else {
                (Tok::IndOpen, 2)
            }
        }
        b'"' => (Tok::Quote, 1),
        b'$' if rest.starts_with(b"${") => (Tok::DollarCurly, 2),
        b'=' if rest.starts_with(b"==") => (Tok::Eq, 2),
        b'=' => (Tok::Assign, 1),
        b'!' if rest.starts_with(b"!=") => (Tok::Ne, 2),
        b'!' => (Tok::Not, 1),
        b'>' if rest.starts_with(b">=") => (Tok::Ge, 2),
        b'>' => (Tok::Gt, 1),
        b'&' if rest.starts_with(b"&&") => (Tok::And, 2),
        b'|' if rest.starts_with(b"||") => (Tok::Or, 2),
        b'{' => (Tok::LBrace, 1),
        b'}' => (Tok::RBrace, 1),
        b'[' => (Tok::LBracket, 1),
        b']' => (Tok::RBracket, 1),
        b'(' => (Tok::LParen, 1),
        b')' => (Tok::RParen, 1),
        b';' => (Tok::Semi, 1),
        b':' => (Tok::Colon, 1),
        b',' => (Tok::Comma, 1),
        b'@' => (Tok::At, 1),
        b'?' => (Tok::Question, 1),
        b'*' => (Tok::Star, 1),
        _ => return Err(unexpected_char(src, pos)),
    };
    Ok(Token {
        kind,
        start: pos as u32,
        end: (pos + len) as u32,
    })
}

fn unexpected_char(src: &[u8], pos: usize) -> LexError {
    // Report the whole UTF-8 character, not one byte of it.
    let text = std::str::from_utf8(&src[pos..]).ok();
    let (shown, len) = match text.and_then(|t| t.chars().next()) {
        Some(c) => (format!("{c:?}"), c.len_utf8()),
        None => (format!("byte 0x{:02x}", src[pos]), 1),
    };
    LexError {
        start: pos as u32,
        end: (pos + len) as u32,
        message: format!("unexpected character {shown}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Tok, &str)> {
        let b = src.as_bytes();
        let mut pos = 0;
        let mut out = Vec::new();
        let mut cache = RunCache::default();
        loop {
            pos = skip_trivia(b, pos).expect("trivia");
            let t = token_at(b, pos, &mut cache).expect("token");
            if t.kind == Tok::Eof {
                return out;
            }
            out.push((t.kind, &src[t.start as usize..t.end as usize]));
            pos = t.end as usize;
        }
    }

    #[test]
    fn longest_match_decides() {
        assert_eq!(kinds("a/b"), vec![(Tok::Path, "a/b")]);
        assert_eq!(kinds("x:x"), vec![(Tok::Uri, "x:x")]);
        assert_eq!(
            kinds("x: x"),
            vec![(Tok::Id, "x"), (Tok::Colon, ":"), (Tok::Id, "x")]
        );
        assert_eq!(kinds("a.5"), vec![(Tok::Id, "a"), (Tok::Float, ".5")]);
        assert_eq!(kinds("1e3"), vec![(Tok::Int, "1"), (Tok::Id, "e3")]);
        assert_eq!(
            kinds("1.e3 1. 0.5"),
            vec![
                (Tok::Float, "1.e3"),
                (Tok::Float, "1."),
                (Tok::Float, "0.5")
            ]
        );
        assert_eq!(
            kinds("<nixpkgs/lib>"),
            vec![(Tok::SearchPath, "<nixpkgs/lib>")]
        );
        assert_eq!(
            kinds("a <= b"),
            vec![(Tok::Id, "a"), (Tok::Le, "<="), (Tok::Id, "b")]
        );
        assert_eq!(
            kinds("a//b"),
            vec![(Tok::Id, "a"), (Tok::Update, "//"), (Tok::Id, "b")]
        );
        assert_eq!(kinds("1/2"), vec![(Tok::Path, "1/2")]);
        assert_eq!(kinds("if-x in"), vec![(Tok::Id, "if-x"), (Tok::In, "in")]);
        assert_eq!(
            kinds("a/${"),
            vec![(Tok::Path, "a/"), (Tok::DollarCurly, "${")]
        );
        assert_eq!(kinds("~/a"), vec![(Tok::HomePath, "~/a")]);
    }

    #[test]
    fn comments_and_errors() {
        assert_eq!(kinds("# x\n/* y */ z"), vec![(Tok::Id, "z")]);
        assert!(skip_trivia(b"/* open", 0).is_err());
        let mut cache = RunCache::default();
        assert!(token_at("é".as_bytes(), 0, &mut cache).is_err());
        assert!(token_at(b"~a", 0, &mut cache).is_err());
    }

    #[test]
    fn path_pieces() {
        assert_eq!(path_piece_len(b"/b c"), 2);
        assert_eq!(path_piece_len(b"//b"), 1);
        assert_eq!(path_piece_len(b".nix;"), 4);
        assert_eq!(path_piece_len(b";"), 0);
    }
}
