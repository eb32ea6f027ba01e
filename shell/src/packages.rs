//! `kiln shell -p PKG…`: the expression of a shell with these packages.
//!
//! The set is `<nixpkgs-mini>`, or the file given with `-f` (called with
//! `{}` when it is a function). The shell is a derivation that is never
//! built: its `buildInputs` are the packages, so they are its inputs (on
//! `PATH`), and when the set has a `stdenv` with a `setup` it is the
//! shell's stdenv (`$stdenv/setup` is sourced).

use crate::error::ShellError;

/// The expression for `packages` from `set` (a Nix path expression such
/// as `<nixpkgs-mini>` or `/abs/file.nix`).
pub fn expression(set: &str, packages: &[String]) -> Result<String, ShellError> {
    if packages.is_empty() {
        return Err(ShellError::Usage(
            "-p needs at least one package name (kiln shell -p hello)".into(),
        ));
    }
    let mut inputs = Vec::new();
    for name in packages {
        let valid = !name.is_empty()
            && name.split('.').all(|part| {
                part.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_'-".contains(c))
            });
        if !valid {
            return Err(ShellError::Usage(format!(
                "-p {name}: not a package name (an attribute path such as hello or lib.foo)"
            )));
        }
        inputs.push(format!("pkgs.{name}"));
    }
    Ok(format!(
        "let\n  set = import {set};\n  pkgs = if builtins.isFunction set then set {{ }} else set;\n\
         in derivation ({{\n  name = \"shell\";\n  system = builtins.currentSystem;\n  \
         builder = \"/bin/sh\";\n  args = [ \"-c\" \"echo a kiln -p shell is not built; exit 1\" ];\n  \
         buildInputs = [ {} ];\n}} // (if pkgs ? stdenv && builtins.isAttrs pkgs.stdenv && pkgs.stdenv ? outPath then {{ stdenv = pkgs.stdenv; }} else {{ }}))\n",
        inputs.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_checked() {
        let e = super::expression("<nixpkgs-mini>", &["hello".into(), "a.b".into()]).unwrap();
        assert!(e.contains("buildInputs = [ pkgs.hello pkgs.a.b ]"), "{e}");
        assert!(super::expression("<x>", &["a; b".into()]).is_err());
        assert!(super::expression("<x>", &[]).is_err());
    }
}
