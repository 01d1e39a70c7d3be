//! The settings a script declares: every `setting("name", default)` call of the script and of
//! the modules it imports, found in their syntax trees without running anything. Used by
//! `ganscript run SCRIPT --list-settings`, and to refuse a `--set` key that no call reads
//! before the run starts.

use crate::session::STDLIB;
use rhai::{ASTNode, Engine, Expr, Stmt, AST};
use std::path::{Path, PathBuf};

/// One `setting(...)` call.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDecl {
    pub name: String,
    /// The default as written (`30`, `"hinge"`, `if mixture { 10000 } else { 500 }`).
    pub default: String,
    /// The comment on the call's line, without `//`.
    pub comment: String,
    /// The file and line of the call.
    pub file: String,
    pub line: usize,
}

/// What a script declares.
#[derive(Debug, Default)]
pub struct Declared {
    /// In file order, imports after the script.
    pub settings: Vec<SettingDecl>,
    /// Calls whose name is not a string literal (`setting(key, 1)`): the list is then
    /// incomplete, and unknown `--set` keys are not refused early.
    pub dynamic: Vec<String>,
}

impl Declared {
    /// Whether some call reads `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.settings.iter().any(|s| s.name == name)
    }

    /// The declared names closest to `name` (best first, at most 3).
    pub fn nearest(&self, name: &str) -> Vec<String> {
        let mut names: Vec<&str> = self.settings.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        crate::hints::nearest(name, names, 0.75)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// The listing `--list-settings` prints.
    pub fn listing(&self, script: &str) -> String {
        if self.settings.is_empty() {
            return format!("{script} reads no settings\n");
        }
        let w_name = self
            .settings
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(7);
        let w_default = self
            .settings
            .iter()
            .map(|s| s.default.chars().count())
            .max()
            .unwrap_or(0)
            .max(7);
        let mut out = format!("{:<w_name$}  {:<w_default$}  what\n", "setting", "default");
        let mut seen = std::collections::HashSet::new();
        for s in &self.settings {
            let again = !seen.insert(s.name.clone());
            let mut what = s.comment.clone();
            if s.file != script {
                what = format!("{what} [{}:{}]", s.file, s.line).trim().to_string();
            }
            if again {
                what = format!("{what} (read again)").trim().to_string();
            }
            out.push_str(&format!(
                "{:<w_name$}  {:<w_default$}  {what}\n",
                s.name, s.default
            ));
        }
        if !self.dynamic.is_empty() {
            out.push_str(&format!(
                "(also settings whose names are computed, at {})\n",
                self.dynamic.join(", ")
            ));
        }
        out
    }
}

/// The settings `ast` (the script `file`, text `text`) and its imports declare. Imports are
/// looked up as a run resolves them: a `.rhai` file beside the script, else a stdlib module;
/// one that cannot be found or compiled is skipped (the run reports it).
pub fn declared(engine: &Engine, ast: &AST, file: &str, text: &str) -> Declared {
    let mut out = Declared::default();
    let dir = Path::new(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut seen = vec![file.to_string()];
    scan(engine, ast, file, text, &dir, &mut seen, &mut out, 0);
    out
}

#[allow(clippy::too_many_arguments)]
fn scan(
    engine: &Engine,
    ast: &AST,
    file: &str,
    text: &str,
    dir: &Path,
    seen: &mut Vec<String>,
    out: &mut Declared,
    depth: usize,
) {
    let lines: Vec<&str> = text.lines().collect();
    let mut imports: Vec<String> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        // A call is an expression, or a statement of its own (`setting("a", 1);`, or a
        // function body's last value).
        let call = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(call, pos))) => Some((call, pos)),
            Some(ASTNode::Stmt(Stmt::FnCall(call, pos))) => Some((call, pos)),
            _ => None,
        };
        match path.last() {
            _ if call.is_some_and(|(c, _)| c.name == "setting") => {
                let (call, pos) = call.expect("matched");
                let line = pos.line().unwrap_or(0);
                match call.args.first() {
                    Some(Expr::StringConstant(name, _)) if call.args.len() == 2 => {
                        let src = lines.get(line.wrapping_sub(1)).copied().unwrap_or("");
                        out.settings.push(SettingDecl {
                            name: name.to_string(),
                            default: default_text(src, name),
                            comment: src
                                .split_once("//")
                                .map(|(_, c)| c.trim().to_string())
                                .unwrap_or_default(),
                            file: file.to_string(),
                            line,
                        });
                    }
                    _ => out.dynamic.push(format!("{file}:{line}")),
                }
            }
            Some(ASTNode::Stmt(Stmt::Import(x, _))) => {
                if let Expr::StringConstant(p, _) = &x.0 {
                    imports.push(p.to_string());
                }
            }
            _ => {}
        }
        true
    });
    if depth >= 8 {
        return;
    }
    for name in imports {
        let with_ext = if name.ends_with(".rhai") {
            name.clone()
        } else {
            format!("{name}.rhai")
        };
        let local: PathBuf = dir.join(&with_ext);
        let (label, src) = match std::fs::read_to_string(&local) {
            Ok(s) => (local.display().to_string(), s),
            Err(_) => match STDLIB
                .iter()
                .find(|(n, _)| *n == with_ext.trim_end_matches(".rhai"))
            {
                Some((n, s)) => (format!("stdlib/{n}.rhai"), s.to_string()),
                None => continue,
            },
        };
        if seen.contains(&label) {
            continue;
        }
        seen.push(label.clone());
        if let Ok(module) = engine.compile(&src) {
            let sub_dir = Path::new(&label)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            scan(
                engine,
                &module,
                &label,
                &src,
                &sub_dir,
                seen,
                out,
                depth + 1,
            );
        }
    }
}

/// The default argument of `setting("name", ...)` as written on its line: the text after the
/// name's comma up to the call's closing parenthesis.
fn default_text(line: &str, name: &str) -> String {
    let key = format!("\"{name}\"");
    let Some(at) = line.find(&format!("setting({key}")) else {
        return "…".into();
    };
    let rest = &line[at + "setting(".len() + key.len()..];
    let rest = rest.trim_start().trim_start_matches(',').trim_start();
    let mut depth = 0i32;
    let mut in_str: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (in_str, c) {
            (Some(q), c) if c == q => in_str = None,
            (Some(_), _) => {}
            (None, '"' | '`' | '\'') => in_str = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')') if depth == 0 => return rest[..i].trim().to_string(),
            (None, ')' | ']' | '}') => depth -= 1,
            _ => {}
        }
    }
    "…".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_read_as_written() {
        assert_eq!(
            default_text(r#"let m = setting("margin", 30.0);   // m"#, "margin"),
            "30.0"
        );
        assert_eq!(
            default_text(
                r#"let g = setting("grid_every", if mixture { 10000 } else { 500 });"#,
                "grid_every"
            ),
            "if mixture { 10000 } else { 500 }"
        );
        assert_eq!(
            default_text(r#"let s = setting("kind", "a)b");"#, "kind"),
            "\"a)b\""
        );
        assert_eq!(
            default_text(r#"let s = setting("f", max(1, 2));"#, "f"),
            "max(1, 2)"
        );
    }
}
