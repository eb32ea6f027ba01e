//! `kiln explain [CODE]`: the page behind an evaluation error code
//! (`error code E007` in a message), or the list of codes.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use kiln_eval::explain::{PAGES, Page, explain};

use crate::{exit, output};

/// Explain an evaluation error code, or list them all.
///
/// Every evaluation error ends with a note `error code E0NN`; this prints
/// what the error means, an expression that causes it, and what usually
/// fixes it.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  kiln explain                 every code with its one-line title
  kiln explain E007            infinite recursion
  kiln explain 5               the same as E005")]
pub struct ExplainArgs {
    /// The code: `E007`, `e007` or `7`.
    #[arg(value_name = "CODE")]
    code: Option<String>,
}

pub fn run(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.code {
        None => PAGES
            .iter()
            .map(|page| format!("{}  {}\n", page.code, page.title))
            .collect(),
        Some(code) => match explain(code) {
            Some(page) => render(page),
            None => {
                return Err(exit::user(anyhow!(
                    "no error code {code:?}; the codes are {} to {} ('kiln explain' lists them)",
                    PAGES[0].code,
                    PAGES[PAGES.len() - 1].code
                )));
            }
        },
    };
    output::stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn render(page: &Page) -> String {
    let text: Vec<String> = page.text.split("\n\n").map(|p| wrap(p, 78)).collect();
    format!(
        "{}: {}\n\n{}\n\nFor example:\n\n    kiln eval -E '{}'\n",
        page.code,
        page.title,
        text.join("\n\n"),
        page.example.replace('\'', "'\\''")
    )
}

/// A paragraph broken into lines of at most `width` characters (a longer
/// word stays whole).
fn wrap(paragraph: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in paragraph.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn paragraphs_wrap_at_the_width() {
        let wrapped = super::wrap("aa bb cc dd", 5);
        assert_eq!(wrapped, "aa bb\ncc dd");
        assert_eq!(super::wrap("longword x", 4), "longword\nx");
    }
}
