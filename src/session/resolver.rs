//! `import "name"`: modules from the script's own directory, or from the standard library
//! (`stdlib/`, compiled into the binary).

use super::Sources;
use crate::errors::Error;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The modules shipped in `stdlib/`, compiled into the binary.
pub const STDLIB: &[(&str, &str)] = &[
    ("energy", include_str!("../../stdlib/energy.rhai")),
    ("train", include_str!("../../stdlib/train.rhai")),
];

/// Resolves `import "name"`: a `.rhai` file under the script's own directory (next to the
/// importing file, then in the script's directory), then a module of the standard library (from
/// `$GANSCRIPT_STDLIB` if set, else the copy compiled into the binary). An absolute name, or one
/// that leaves the script's directory (`..`, a symbolic link), is refused.
pub(crate) struct StdlibResolver {
    script_dir: Option<PathBuf>,
    sources: Sources,
    cache: RefCell<HashMap<String, Shared<Module>>>,
}

/// Why an import was refused.
const IMPORT_REFUSED: &str =
    "imports come from the standard library or from .rhai files under the script's directory";

impl StdlibResolver {
    pub(crate) fn new(script_dir: Option<PathBuf>, sources: Sources) -> StdlibResolver {
        StdlibResolver {
            script_dir,
            sources,
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn locate(
        &self,
        importer: Option<&str>,
        path: &str,
    ) -> Result<Option<(String, String)>, Error> {
        let with_ext = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        let refused = || format!("import \"{path}\": {IMPORT_REFUSED}");
        let rel = Path::new(&with_ext);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::Msg(refused()));
        }
        // (folder, whether a file found there but outside the script's directory is an error
        // rather than skipped: a module next to a stdlib module is simply not a local file).
        let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
        if let Some(src) = importer {
            if let Some(dir) = Path::new(src).parent() {
                if Path::new(src).exists() {
                    dirs.push((dir.to_path_buf(), false));
                }
            }
        }
        if let Some(d) = &self.script_dir {
            dirs.push((d.clone(), true));
        }
        for (dir, strict) in dirs {
            let p = dir.join(rel);
            if !p.is_file() {
                continue;
            }
            if !crate::sandbox::import_allowed(&p) {
                if strict {
                    return Err(Error::Msg(refused()));
                }
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Ok(Some((p.display().to_string(), text)));
            }
        }
        if let Ok(d) = std::env::var("GANSCRIPT_STDLIB") {
            let p = PathBuf::from(d).join(rel);
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Ok(Some((p.display().to_string(), text)));
            }
        }
        let name = with_ext
            .trim_end_matches(".rhai")
            .trim_start_matches("stdlib/");
        Ok(STDLIB
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| (format!("stdlib/{n}.rhai"), text.to_string())))
    }
}

impl ModuleResolver for StdlibResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let found = self
            .locate(source, path)
            .map_err(|msg| Box::new(EvalAltResult::ErrorRuntime(msg.to_string().into(), pos)))?;
        let Some((label, text)) = found else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                path.to_string(),
                pos,
            )));
        };
        if let Some(m) = self.cache.borrow().get(&label) {
            return Ok(m.clone());
        }
        self.sources.insert(&label, &text);
        self.sources.insert(path, &text);
        let wrap =
            |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(label.clone(), e, pos));
        let mut ast = engine.compile(&text).map_err(|e| wrap(e.into()))?;
        ast.set_source(label.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(wrap)?;
        let module: Shared<Module> = module.into();
        self.cache.borrow_mut().insert(label, module.clone());
        Ok(module)
    }
}
