//! Parses a file (or `-E EXPR`) and prints the S-expression, or the
//! rendered error. `--check` prints nothing. For trying the parser without
//! building the whole `kiln` binary.

use kiln_lang::{Interner, SourceMap};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--check").collect();
    let (name, text) = match rest.as_slice() {
        [flag, expr] if flag.as_str() == "-E" => ("(string)".to_string(), (*expr).clone()),
        [file] => match std::fs::read_to_string(file) {
            Ok(t) => ((*file).clone(), t),
            Err(e) => {
                eprintln!("{file}: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: parse_file [--check] FILE | -E EXPR");
            return std::process::ExitCode::from(2);
        }
    };
    let mut map = SourceMap::new();
    let file = map.add(name, None, text);
    let mut names = Interner::new();
    match kiln_lang::parse(file, map.text(file), &mut names) {
        Ok(e) => {
            if !check {
                println!("{}", kiln_lang::sexpr::to_sexpr(&e, &names));
            }
            // The process ends here: freeing the tree node by node is wasted work.
            std::mem::forget(e);
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprint!("{}", err.to_diagnostic().render(&map));
            std::process::ExitCode::from(2)
        }
    }
}
