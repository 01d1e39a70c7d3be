//! The layering of ARCHITECTURE.md, checked from the source: every `crate::` path in a file of
//! `src/` (code, macros and doc links alike) must name a module ranked below the file's own
//! module. The rank order puts each layer above the ones it builds on, and orders the modules
//! within a layer, so an upward import and two modules importing each other both fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules, bottom to top, by layer (ARCHITECTURE.md, "Layers").
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "errors", "memory", "rng", "limits", "device", "settings", "sandbox", "io", "state",
        ],
    ),
    ("kernels", &["kernels"]),
    ("tensor API", &["tensor", "autograd"]),
    (
        "GAN terms",
        &[
            "gan::schedules",
            "gan::magan",
            "gan::objectives",
            "gan::penalties",
            "gan",
        ],
    ),
    ("nets and optimizers", &["nn", "optim"]),
    ("data", &["data"]),
    ("runs", &["run", "metrics", "compare", "checkpoint"]),
    ("session", &["session"]),
    (
        "commands",
        &[
            "hints",
            "declared",
            "diagnostics",
            "script",
            "docs",
            "eval",
            "repl",
            "sweep",
            "commands",
            "main",
        ],
    ),
];

/// Items of the crate root (lib.rs): the `reg!` macro and its tag, usable from anywhere.
const ROOT_ITEMS: &[&str] = &["reg", "MODULE_TAG"];

fn rank(module: &str) -> Option<(usize, &'static str)> {
    let mut i = 0;
    for (layer, mods) in LAYERS {
        for m in mods.iter() {
            if *m == module {
                return Some((i, layer));
            }
            i += 1;
        }
    }
    None
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/nn/spec.rs` → `nn`); in `gan/`, whose
/// files are ranked one by one, the file's own module (`src/gan/penalties.rs` → `gan::penalties`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    if let Ok(inner) = rel.strip_prefix("gan") {
        let stem = inner.file_stem().unwrap().to_string_lossy().to_string();
        return if stem == "mod" {
            "gan".into()
        } else {
            format!("gan::{stem}")
        };
    }
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level names a file takes from the crate: `crate::x::...`, `$crate::x`, and the
/// names inside `use crate::{a, b::c}`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // A braced list: its top-level names (a nested `{...}` belongs to the name before).
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            out.insert(std::mem::take(&mut name));
                        }
                        at_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && at_start {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                    } else if !name.is_empty() {
                        out.insert(std::mem::take(&mut name));
                        at_start = false;
                    }
                }
            }
            if !name.is_empty() {
                out.insert(name);
            }
        } else {
            let mut name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // `gan`'s files are ranked one by one: `crate::gan::penalties` names `gan::penalties`.
            if name == "gan" {
                let sub: String = after["gan::".len().min(after.len())..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if after.starts_with("gan::") && !sub.is_empty() {
                    name = format!("gan::{sub}");
                }
            }
            if !name.is_empty() {
                out.insert(name);
            }
        }
        rest = after;
    }
    out
}

#[test]
fn the_import_parser_reads_paths_and_braced_lists() {
    let got = imports(
        "use crate::errors::{a, b};\nuse crate::{tensor, nn::{Net, x}, run};\n/// [`crate::io::write`]\n$crate::kernels::f\nuse crate::gan::penalties::Critic;",
    );
    let want: BTreeSet<String> = [
        "errors",
        "tensor",
        "nn",
        "run",
        "io",
        "kernels",
        "gan::penalties",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
}

#[test]
fn no_module_imports_from_a_layer_above_or_from_a_module_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let (own, own_layer) = rank(&module).unwrap_or_else(|| {
            panic!(
                "{}: module `{module}` has no layer: add it to LAYERS here and to \
                 ARCHITECTURE.md",
                file.display()
            )
        });
        // The binary (main.rs and its commands/) is outside the library: it names the library
        // `ganscript::`, and its own `crate::` is the binary's root.
        let binary = module == "main" || module == "commands";
        let text = if binary {
            text.replace("ganscript::", "crate::")
        } else {
            text
        };
        for name in imports(&text) {
            if name == module || ROOT_ITEMS.contains(&name.as_str()) {
                continue;
            }
            match rank(&name) {
                Some((r, layer)) if r >= own => wrong.push(format!(
                    "{} ({own_layer}) imports `{name}` ({layer}), which is not below it",
                    file.strip_prefix(&src).unwrap().display()
                )),
                Some(_) => {}
                // Re-exports at the crate root (`new_engine`, `EngineOptions`, `Tensor`).
                None if binary => {}
                None => wrong.push(format!(
                    "{}: `crate::{name}` is not a module of any layer",
                    file.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_kernel_layer_knows_no_rhai() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernels");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() >= 10, "src/kernels has {} files", files.len());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains("rhai::") && !text.contains("ScriptResult"),
            "{} uses rhai or the script types: the kernel layer must not know the script engine",
            f.display()
        );
    }
}

#[test]
fn no_source_file_is_over_600_lines_but_the_one_named_in_architecture_md() {
    // ARCHITECTURE.md names this exception; any other file that grows past the limit is split.
    const EXCEPTIONS: &[&str] = &["kernels/conv/mod.rs"];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let lines = std::fs::read_to_string(f).unwrap().lines().count();
        if lines > 600 && !EXCEPTIONS.contains(&rel.as_str()) {
            long.push(format!("src/{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "files over 600 lines:\n{}",
        long.join("\n")
    );
    let arch =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    for e in EXCEPTIONS {
        assert!(
            arch.contains(&format!("src/{e}")),
            "ARCHITECTURE.md does not name src/{e}"
        );
    }
}
