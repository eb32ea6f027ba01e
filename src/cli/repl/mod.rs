//! `kiln repl [FILE…]`: read, evaluate, print, as `nix repl` does.
//!
//! On a terminal: a line editor (rustyline) with history in
//! `$XDG_DATA_HOME/kiln/repl-history` and tab completion of names in
//! scope, commands and attribute paths (`pkgs.he<TAB>`). Input that is
//! not finished (an open `{`, `let` without `in`, an open string) goes on
//! on the next line. Piped input is read line by line the same way,
//! without prompt or history. Errors are shown and the session goes on.

mod input;
mod print;
mod session;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use clap::Args;
use kiln_eval::Value;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};

use self::session::{Flow, Session, Setup};
use crate::cli::GlobalOpts;
use crate::cli::installable::{SourceArgs, auto_args, eval_options};

/// Evaluate expressions interactively, as `nix repl` does.
///
/// Each FILE is loaded as with `:l` (its attributes come into scope,
/// a function is called with the --arg/--argstr values first). Type `:?`
/// for the commands.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln repl
  kiln repl ./default.nix                  its attributes in scope
  kiln repl -I pkgs=./my-pkgs '<pkgs>'     a search path entry
  echo 'builtins.length [ 1 2 ]' | kiln repl

In the REPL:
  x = 1 + 1        bind a name (evaluated when used)
  :l ./pkgs.nix    load a file's attributes
  :p { a = [ 1 ]; }  print completely
  :t x             the type of a value
  :b hello         build a derivation
  :q               quit (or Ctrl-D)")]
pub struct ReplArgs {
    /// Files (or `<name>` search path entries) to load at the start.
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

pub fn run(global: &GlobalOpts, args: &ReplArgs) -> anyhow::Result<ExitCode> {
    let setup = Setup {
        global: global.clone(),
        options: eval_options(global, &args.source.include)?,
        auto_args: auto_args(&args.source),
        colour: std::io::stdout().is_terminal(),
    };
    let mut start: Vec<String> = args.files.iter().map(|f| format!(":l {f}")).collect();
    if let Some(expr) = &args.source.expr {
        start.push(format!(":a {expr}"));
    }
    kiln_eval::run_with_big_stack(move || repl(setup, start))
}

fn repl(setup: Setup, start: Vec<String>) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let session = Rc::new(RefCell::new(Session::new(setup)));
    for line in &start {
        session.borrow_mut().handle(line);
    }
    let config = Config::builder()
        .max_history_size(1000)?
        .auto_add_history(false)
        .history_ignore_dups(true)?
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ReplHelper {
        session: session.clone(),
    }));
    let history = interactive.then(history_file).flatten();
    if let Some(file) = &history {
        let _ = editor.load_history(file);
    }
    if interactive {
        crate::say!(
            "Welcome to kiln {}. Type :? for help.\n",
            env!("CARGO_PKG_VERSION")
        );
    }
    loop {
        let text = match editor.readline("kiln-repl> ") {
            Ok(text) => text,
            // Ctrl-C at the prompt drops the line, as in nix repl.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(err.into()),
        };
        if let Some(file) = &history
            && !text.trim().is_empty()
        {
            let _ = editor.add_history_entry(text.as_str());
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = editor.append_history(file);
        }
        if session.borrow_mut().handle(&text) == Flow::Quit {
            break;
        }
    }
    drop(editor);
    if let Ok(session) = Rc::try_unwrap(session) {
        session.into_inner().end();
    }
    Ok(ExitCode::SUCCESS)
}

/// `$XDG_DATA_HOME/kiln/repl-history`, or under `~/.local/share`.
fn history_file() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })?;
    Some(data.join("kiln/repl-history"))
}

/// The line editor's view of the session: completion and the check for
/// unfinished input.
struct ReplHelper {
    session: Rc<RefCell<Session>>,
}

const COMMANDS: [&str; 11] = [
    ":?", ":a", ":b", ":l", ":log", ":p", ":q", ":r", ":t", ":te", ":help",
];

impl ReplHelper {
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        if before.starts_with(':') && !before.contains(char::is_whitespace) {
            let found = COMMANDS
                .iter()
                .filter(|c| c.starts_with(before))
                .map(|c| c.to_string())
                .collect();
            return (0, found);
        }
        // The word under the cursor: an identifier, maybe with dots.
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let mut session = self.session.borrow_mut();
        let mut found: Vec<String> = match word.rsplit_once('.') {
            Some((expr, prefix)) => match session.evaluate(expr) {
                Ok(Value::Attrs(attrs)) => attrs
                    .iter()
                    .map(|(name, _)| name.as_str().to_owned())
                    .filter(|name| name.starts_with(prefix))
                    .map(|name| format!("{expr}.{name}"))
                    .collect(),
                _ => Vec::new(),
            },
            None => session
                .names()
                .chain(kiln_lang::scope::PLAIN_GLOBALS.iter().copied())
                .filter(|name| name.starts_with(word))
                .map(str::to_owned)
                .collect(),
        };
        found.sort();
        found.dedup();
        (start, found)
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(line, pos);
        let pairs = found
            .into_iter()
            .map(|name| Pair {
                display: name.rsplit('.').next().unwrap_or(&name).to_owned(),
                replacement: name,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if input::is_incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Helper for ReplHelper {}
