//! The file-system sandbox of a script.
//!
//! A script touches files only through the host's functions, and every one of them resolves its
//! path here:
//! - **Writes** (`save_grid`, `plot`, `scatter`, `Net.save`, `opt.save`, `run_path`, the run's
//!   own files) go inside the run directory. A relative path is taken inside it; an absolute path
//!   is accepted only if it already lies inside it (as `run_path` returns); `..` may not leave
//!   it, and neither may a symbolic link (each existing folder on the way is resolved and checked
//!   before anything is created).
//! - **Reads** (data loaders, `Net.load`, `opt.load`) are allowed under the current directory,
//!   the script's directory, the run directory and the directories granted with
//!   `--allow-read DIR`. The path is checked as written first (so nothing outside is even looked
//!   at), then with its symbolic links resolved. Errors about a refused path say nothing about
//!   what is there.
//! - **Imports** come from the standard library or from `.rhai` files under the script's own
//!   directory (see `session::resolver`).
//!
//! The policy of the engine built last on a thread is the current one, and so are its
//! [`Outputs`] (the run directory, which the run layer installs with [`set_outputs`]).
//! Host code that calls the loaders with no engine on its thread is not restricted.

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use std::cell::RefCell;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// What a script may read, besides the run directory.
#[derive(Clone, Default)]
pub struct Policy {
    /// Each allowed root, as written (made absolute) and canonical.
    roots: Vec<Root>,
    /// The script's directory (for imports), if the script came from a file.
    script_dir: Option<Root>,
    /// The run's outputs: its directory may be read too.
    outputs: Option<Rc<dyn Outputs>>,
}

#[derive(Debug, Clone)]
struct Root {
    lexical: PathBuf,
    canonical: Option<PathBuf>,
}

impl Root {
    fn new(dir: &Path) -> Root {
        Root {
            lexical: absolute(dir),
            canonical: std::fs::canonicalize(dir).ok(),
        }
    }
    fn holds_lexical(&self, p: &Path) -> bool {
        p.starts_with(&self.lexical) || self.canonical.as_ref().is_some_and(|c| p.starts_with(c))
    }
    fn holds_canonical(&self, p: &Path) -> bool {
        self.canonical.as_ref().is_some_and(|c| p.starts_with(c))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Policy>>> = const { RefCell::new(None) };
}

/// Where a script's files go: the run directory. The run layer provides it (a run's directory
/// is made, and its config.json written, on first use); the engine assembly hands it to the
/// registrations of the layers below that write files (nets, optimizers).
pub trait Outputs {
    /// The run directory if it was made, else the one `--out` asked for.
    fn dir_or_requested(&self) -> Option<PathBuf>;
    /// `name` resolved inside the run directory (made if needed; see [`write_path`]).
    fn output_path(&self, name: &str, default_ext: &str) -> ScriptResult<PathBuf>;
}

/// The message a refused read ends with (tests look for it).
pub const READ_REFUSED: &str = "outside the directories a script may read";
/// The message a refused write ends with (tests look for it).
pub const WRITE_REFUSED: &str = "outside the run directory";

/// A script's directory: the parent of its file (`.` for a bare file name).
pub fn script_dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes the policy of a new engine current on this thread: reads under the current directory,
/// `script_dir` and `allow_read` (plus the run directory, looked up when needed).
pub fn install(
    script_dir: Option<&Path>,
    allow_read: &[PathBuf],
    outputs: Option<Rc<dyn Outputs>>,
) {
    let mut roots = vec![Root::new(Path::new("."))];
    if let Some(d) = script_dir {
        roots.push(Root::new(d));
    }
    roots.extend(allow_read.iter().map(|d| Root::new(d)));
    let policy = Policy {
        roots,
        script_dir: script_dir.map(Root::new),
        outputs,
    };
    CURRENT.with(|c| *c.borrow_mut() = Some(Rc::new(policy)));
}

fn current() -> Option<Rc<Policy>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// `p` made absolute against the current directory, with `.` and `..` resolved as written
/// (without looking at the file system).
pub fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Checks that a script may read `given` (a file or a directory) and returns it. `what` names
/// the function in the error. Refused: a path outside the allowed directories, as written or
/// once its symbolic links are resolved. A path that does not exist is returned as it is (the
/// caller reports that it is missing).
pub fn read_path(what: &str, given: &str) -> ScriptResult<PathBuf> {
    check_read(what, Path::new(given)).map_err(script_err)?;
    Ok(PathBuf::from(given))
}

/// [`read_path`] for a path found by the host (a file inside a granted folder, which may be a
/// symbolic link), with a plain error message.
pub fn check_read(what: &str, path: &Path) -> Result<(), Error> {
    let Some(policy) = current() else {
        return Ok(());
    };
    if path.as_os_str().is_empty() {
        return Err(Error::Msg(format!("{what}: the path is empty")));
    }
    let run_dir = policy
        .outputs
        .as_ref()
        .and_then(|o| o.dir_or_requested())
        .map(|d| Root::new(&d));
    let roots: Vec<&Root> = policy.roots.iter().chain(run_dir.as_ref()).collect();
    let refused = || {
        format!(
            "{what}: cannot read {}: it is {READ_REFUSED} (the current directory, the script's \
             directory and the run directory; grant another with --allow-read DIR)",
            path.display()
        )
    };
    let lexical = absolute(path);
    if !roots.iter().any(|r| r.holds_lexical(&lexical)) {
        return Err(Error::Msg(refused()));
    }
    // With its links resolved, as the system will open it (`link/..` is the folder above the
    // link's target, not the folder holding the link): the path, or (when it does not exist)
    // its nearest existing folder, so that a missing file behind a link that leads out is
    // refused too.
    let joined = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut probe = joined.as_path();
    let real = loop {
        match std::fs::canonicalize(probe) {
            Ok(real) => break real,
            Err(_) => match probe.parent() {
                Some(p) => probe = p,
                None => return Err(Error::Msg(refused())),
            },
        }
    };
    if roots.iter().any(|r| r.holds_canonical(&real)) {
        Ok(())
    } else {
        Err(Error::Msg(refused()))
    }
}

/// Resolves `name`, a file a script writes, inside the run directory `run_dir` (which exists),
/// creating the folders on the way. Refused: an absolute path elsewhere, a `..` that leaves the
/// run directory, a folder on the way that is a symbolic link leading out of it.
pub fn write_path(run_dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let refused = |why: &str| {
        format!(
            "cannot write `{name}`: {why} {WRITE_REFUSED} {}; give a path relative to it \
             (e.g. \"samples/x.png\")",
            run_dir.display()
        )
    };
    if name.trim().is_empty() {
        return Err("an output file name must not be empty".into());
    }
    let run_lexical = absolute(run_dir);
    let run_real = std::fs::canonicalize(run_dir).map_err(|e| {
        format!(
            "cannot write `{name}`: the run directory {}: {e}",
            run_dir.display()
        )
    })?;
    let given = Path::new(name);
    // Below, `..` is resolved as written; the system resolves `link/..` to the folder above the
    // link's target instead. The two agree unless a `..` follows a symbolic link: refuse that.
    if dotdot_after_link(run_dir, given) {
        return Err(Error::Msg(refused("its `..` after a symbolic link leads")));
    }
    let rel: PathBuf = if given.is_absolute() {
        let p = absolute(given);
        if let Ok(r) = p.strip_prefix(&run_lexical) {
            r.to_path_buf()
        } else if let Ok(r) = p.strip_prefix(&run_real) {
            r.to_path_buf()
        } else {
            return Err(Error::Msg(refused("it is an absolute path")));
        }
    } else {
        let mut out = PathBuf::new();
        for c in given.components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::CurDir => {}
                Component::ParentDir => {
                    if !out.pop() {
                        return Err(Error::Msg(refused("its `..` leads")));
                    }
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(Error::Msg(refused("it is an absolute path")))
                }
            }
        }
        out
    };
    if rel.as_os_str().is_empty() {
        return Err(Error::Msg(format!(
            "cannot write `{name}`: it names the run directory itself, not a file in it"
        )));
    }
    // Walk the folders on the way: an existing one must resolve inside the run directory (a
    // symbolic link may not lead out); a missing one is created inside.
    let mut cur = run_dir.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len() - 1] {
        cur.push(c.as_os_str());
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let real = std::fs::canonicalize(&cur)
                    .map_err(|_| refused("a symbolic link on the way leads"))?;
                if !real.starts_with(&run_real) {
                    return Err(Error::Msg(refused("a symbolic link on the way leads")));
                }
                if !real.is_dir() {
                    return Err(Error::Msg(format!(
                        "cannot write `{name}`: {} is not a folder",
                        cur.display()
                    )));
                }
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Msg(format!(
                    "cannot write `{name}`: {} is a file, not a folder",
                    cur.display()
                )))
            }
            Err(_) => std::fs::create_dir(&cur)
                .map_err(|e| format!("cannot create {}: {e}", cur.display()))?,
        }
    }
    let target = run_dir.join(&rel);
    // Belt and braces: the folder the file goes in, resolved, is inside the run directory.
    if let Some(parent) = target.parent() {
        let real = std::fs::canonicalize(parent)
            .map_err(|e| format!("cannot write `{name}`: {}: {e}", parent.display()))?;
        if !real.starts_with(&run_real) {
            return Err(Error::Msg(refused("its folder resolves")));
        }
    }
    // The file itself may be a symbolic link. Writes rename over it (they would replace the
    // link, never write through it), but one that leads out of the run directory is refused
    // all the same: it names a file outside.
    if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
        let inside = std::fs::canonicalize(&target).is_ok_and(|real| real.starts_with(&run_real));
        if !inside {
            return Err(Error::Msg(refused("it is a symbolic link that leads")));
        }
    }
    Ok(target)
}

/// Whether a `..` of `p` (relative to `base`, or absolute) comes after a component that is a
/// symbolic link.
fn dotdot_after_link(base: &Path, p: &Path) -> bool {
    let mut cur = base.to_path_buf();
    let mut seen_link = false;
    for c in p.components() {
        match c {
            Component::ParentDir if seen_link => return true,
            Component::ParentDir => {
                cur.pop();
            }
            Component::Normal(s) => {
                cur.push(s);
                seen_link |=
                    std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink());
            }
            Component::RootDir | Component::Prefix(_) => cur = PathBuf::from(c.as_os_str()),
            Component::CurDir => {}
        }
    }
    false
}

/// Whether `import "name"` may load `file` (found in `dir`): the file lies under the script's
/// directory, as written and with links resolved.
pub fn import_allowed(file: &Path) -> bool {
    let Some(policy) = current() else {
        return true;
    };
    let Some(root) = &policy.script_dir else {
        return false;
    };
    root.holds_lexical(&absolute(file))
        && std::fs::canonicalize(file)
            .map(|real| root.holds_canonical(&real))
            .unwrap_or(false)
}

/// The script's directory of the current policy.
pub fn script_dir() -> Option<PathBuf> {
    current().and_then(|p| p.script_dir.as_ref().map(|r| r.lexical.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_resolves_dots_as_written() {
        assert_eq!(
            absolute(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(absolute(Path::new("/../x")), PathBuf::from("/x"));
    }

    #[test]
    fn writes_stay_in_the_run_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, run.join("link")).unwrap();
        assert_eq!(
            write_path(&run, "a/b/c.png").unwrap(),
            run.join("a/b/c.png")
        );
        assert!(run.join("a/b").is_dir());
        assert_eq!(write_path(&run, "a/../d.png").unwrap(), run.join("d.png"));
        let abs = run.join("e.png").display().to_string();
        assert_eq!(write_path(&run, &abs).unwrap(), run.join("e.png"));
        for bad in [
            "../x.png",
            "a/../../x.png",
            "/tmp/x.png",
            "link/x.png",
            "link/sub/x.png",
        ] {
            let e = write_path(&run, bad).unwrap_err().to_string();
            assert!(e.contains(WRITE_REFUSED), "{bad}: {e}");
        }
        let e = write_path(&run, &outside.join("x").display().to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute path"), "{e}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(write_path(&run, ".").is_err());
        assert!(write_path(&run, "").is_err());
    }
}
