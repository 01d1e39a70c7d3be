//! The sweep file (TOML) and the listing of its runs.
//!
//! ```toml
//! script = "../scripts/roth.rhai"   # paths are relative to this file's directory
//! out = "../runs/roth-sweep"        # the output root: one directory per run inside it
//! seeds = [1, 2, 3]
//! device = "cpu"                    # optional; `--device` overrides it
//!
//! [set]                             # settings every run gets
//! dataset = "mixture3d"
//!
//! [grid]                            # every combination of these (first key outermost)
//! gamma = [0.0, 0.1]
//! anneal = [true, false]
//!
//! [[case]]                          # or/and explicit cases, each crossed with the grid
//! name = "unreg"                    # optional: names the case's directories
//! script = "../scripts/ebgan.rhai"  # optional: another script for this case
//! set = { gamma = 0.0 }             # the case's settings (over [set])
//!
//! [slurm]                           # optional defaults of `--slurm` (flags override them)
//! partition = "gpu"
//! time = "02:00:00"
//! gpus_per_run = 1
//! cpus_per_run = 4
//! mem = "16G"
//! sbatch_args = ["--account=lab"]
//! ```
//!
//! The runs are listed seed by seed (so one seed of everything comes first), then case by case,
//! then grid point by grid point. A run's directory name is its case's name (or, for an unnamed
//! case, its settings as `key=value`), then its grid values as `key=value`, joined with commas,
//! then `-s<seed>`: `unreg,anneal=true-s1`. With nothing varied it is the script's name:
//! `roth-s1`. Values are written as they are given (`0.1`, `2.0`, `true`, `mixture3d`); in
//! names, characters other than letters, digits and `.+-_` become `_`.

use crate::errors::Error;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A setting's value in a sweep file.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Value {
    /// The text given to `--set key=TEXT`: read back by the run as the same value (a string
    /// that would read as a number or a boolean is quoted).
    pub fn set_text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => {
                let plain = crate::settings::parse_value(s)
                    .into_immutable_string()
                    .map(|p| p.as_str() == s)
                    .unwrap_or(false);
                if plain {
                    s.clone()
                } else {
                    format!("\"{s}\"")
                }
            }
        }
    }

    /// The value as it appears in directory names and tables.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Float(f) => format!("{f:?}"),
            other => other.set_text(),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a setting value: a number, a string or true/false")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
                i64::try_from(u)
                    .map(Value::Int)
                    .map_err(|_| E::custom(format!("{u} is too large for an integer setting")))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
                Ok(Value::Float(f))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The values of one grid key: a non-empty list.
#[derive(Clone, Debug)]
struct Values(Vec<Value>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Values, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of values, e.g. [0.1, 1.0]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
                if out.is_empty() {
                    return Err(de::Error::custom(
                        "a grid key needs at least one value (an empty list makes no runs)",
                    ));
                }
                Ok(Values(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// A table whose keys keep the file's order.
#[derive(Clone, Debug)]
struct Ordered<T>(Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of settings (key = value)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(de::Error::custom(format!(
                            "`{k}` is not a setting name (letters, digits, _)"
                        )));
                    }
                    out.push((k, map.next_value::<T>()?));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: Option<String>,
    script: Option<String>,
    #[serde(default)]
    set: Ordered<Value>,
}

/// Defaults of `--slurm` from the sweep file's `[slurm]` table.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SlurmDefaults {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus_per_run: Option<u32>,
    pub cpus_per_run: Option<u32>,
    pub mem: Option<String>,
    #[serde(default)]
    pub sbatch_args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    script: Option<String>,
    out: Option<String>,
    seeds: Option<Vec<u64>>,
    device: Option<String>,
    #[serde(default)]
    set: Ordered<Value>,
    #[serde(default)]
    grid: Ordered<Values>,
    #[serde(default, rename = "case")]
    cases: Vec<CaseFile>,
    #[serde(default)]
    slurm: SlurmDefaults,
}

/// One run of a sweep: an ordinary `ganscript run`.
#[derive(Clone, Debug)]
pub struct Run {
    /// Its place in the listing (the Slurm array index).
    pub index: usize,
    /// Its directory's name: `<configuration>-s<seed>`.
    pub name: String,
    /// The name without the seed: runs with the same configuration differ only in their seed.
    pub config: String,
    /// Its directory (inside the output root).
    pub dir: PathBuf,
    pub script: PathBuf,
    /// Every `--set`, in order: the file's `[set]`, the case's, the grid's.
    pub sets: Vec<(String, Value)>,
    /// What tells its configuration apart: `case` (a named case) and the varied keys.
    pub varied: Vec<(String, String)>,
    pub seed: u64,
}

impl Run {
    /// The `--set` arguments: `key=value`.
    pub fn set_args(&self) -> Vec<String> {
        self.sets
            .iter()
            .map(|(k, v)| format!("{k}={}", v.set_text()))
            .collect()
    }
}

/// A loaded sweep file.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The sweep file.
    pub file: PathBuf,
    /// The output root.
    pub root: PathBuf,
    pub device: Option<String>,
    pub seeds: Vec<u64>,
    pub slurm: SlurmDefaults,
    pub runs: Vec<Run>,
}

/// Characters allowed in directory names; others become `_`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `path` with `.` and `name/..` components removed (lexically: links are not followed).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into())
}

impl Sweep {
    /// Reads and expands the sweep file `path`.
    pub fn load(path: &Path) -> Result<Sweep, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the sweep file {}: {e}", path.display()))?;
        let file = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Sweep::parse(&text, &file)
    }

    /// Expands the sweep file `text`, read from `file` (relative paths in it are taken from
    /// `file`'s directory).
    pub fn parse(text: &str, file: &Path) -> Result<Sweep, Error> {
        let shown = file.display();
        let f: SweepFile = toml::from_str(text).map_err(|e| format!("{shown}: {e}"))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            normalize(&base.join(p))
        };
        let out = f.out.as_deref().ok_or_else(|| {
            format!("{shown}: no `out`: name the output root, e.g. out = \"runs/my-sweep\"")
        })?;
        if out.trim().is_empty() {
            return Err(Error::Msg(format!(
                "{shown}: `out` is empty: name the output root"
            )));
        }
        let root = resolve(out);
        let seeds = f.seeds.unwrap_or_else(|| vec![0]);
        if seeds.is_empty() {
            return Err(Error::Msg(format!(
                "{shown}: `seeds` is empty: give at least one seed, e.g. seeds = [1, 2, 3]"
            )));
        }
        for (i, s) in seeds.iter().enumerate() {
            if seeds[..i].contains(s) {
                return Err(Error::Msg(format!(
                    "{shown}: seed {s} is listed twice in `seeds`"
                )));
            }
        }
        for (k, _) in &f.grid.0 {
            if f.set.0.iter().any(|(s, _)| s == k) {
                return Err(Error::Msg(format!(
                    "{shown}: `{k}` is both in [set] and in [grid]: keep it in one of them"
                )));
            }
        }
        // The cases: the file's, or one unnamed case with the top-level script.
        struct Case {
            name: Option<String>,
            script: PathBuf,
            own_script: bool,
            set: Vec<(String, Value)>,
        }
        let mut cases = Vec::new();
        if f.cases.is_empty() {
            let script = f.script.as_deref().ok_or_else(|| {
                format!("{shown}: no `script`: name the training script, e.g. script = \"scripts/roth.rhai\"")
            })?;
            cases.push(Case {
                name: None,
                script: resolve(script),
                own_script: false,
                set: Vec::new(),
            });
        }
        for (i, c) in f.cases.into_iter().enumerate() {
            let n = i + 1;
            let script = match (&c.script, &f.script) {
                (Some(s), _) | (None, Some(s)) => resolve(s),
                (None, None) => {
                    return Err(Error::Msg(format!(
                        "{shown}: case {n} has no script, and there is no top-level `script`"
                    )))
                }
            };
            if let Some(name) = &c.name {
                if name.is_empty() || clean(name) != *name {
                    return Err(Error::Msg(format!(
                        "{shown}: case {n}: the name `{name}` must be letters, digits and . + - _ (it names directories)"
                    )));
                }
            }
            for (k, _) in &c.set.0 {
                if f.grid.0.iter().any(|(g, _)| g == k) {
                    return Err(Error::Msg(format!(
                        "{shown}: case {n} sets `{k}`, which is also a [grid] key: keep it in one of them"
                    )));
                }
            }
            cases.push(Case {
                name: c.name,
                own_script: c.script.is_some(),
                script,
                set: c.set.0,
            });
        }
        // The grid's points, first key outermost.
        let mut points: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for (k, Values(vals)) in &f.grid.0 {
            points = points
                .into_iter()
                .flat_map(|p| {
                    vals.iter().map(move |v| {
                        let mut q = p.clone();
                        q.push((k.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        let mut runs: Vec<Run> = Vec::new();
        for &seed in &seeds {
            for case in &cases {
                for point in &points {
                    let mut parts = Vec::new();
                    let mut varied = Vec::new();
                    match &case.name {
                        Some(name) => {
                            parts.push(name.clone());
                            varied.push(("case".to_string(), name.clone()));
                        }
                        None => {
                            if case.own_script {
                                parts.push(clean(&stem(&case.script)));
                                varied.push(("script".to_string(), stem(&case.script)));
                            }
                            for (k, v) in &case.set {
                                parts.push(format!("{k}={}", clean(&v.display())));
                                varied.push((k.clone(), v.display()));
                            }
                        }
                    }
                    for (k, v) in point {
                        parts.push(format!("{k}={}", clean(&v.display())));
                        varied.push((k.clone(), v.display()));
                    }
                    if parts.is_empty() {
                        parts.push(clean(&stem(&case.script)));
                    }
                    let config = parts.join(",");
                    let name = format!("{config}-s{seed}");
                    if name.len() > 200 {
                        return Err(Error::Msg(format!(
                            "{shown}: the directory name `{name}` is too long: name the cases (`name = ...`)"
                        )));
                    }
                    if let Some(other) = runs.iter().find(|r| r.name == name) {
                        return Err(Error::Msg(format!(
                            "{shown}: two runs would share the directory `{name}` ({} and {}): name the cases (`name = ...`) so that they differ",
                            other.index,
                            runs.len()
                        )));
                    }
                    // [set], then the case's settings over it, then the grid point.
                    let mut sets: Vec<(String, Value)> = Vec::new();
                    for (k, v) in f.set.0.iter().chain(&case.set).chain(point) {
                        match sets.iter_mut().find(|(s, _)| s == k) {
                            Some(slot) => slot.1 = v.clone(),
                            None => sets.push((k.clone(), v.clone())),
                        }
                    }
                    runs.push(Run {
                        index: runs.len(),
                        dir: root.join(&name),
                        name,
                        config,
                        script: case.script.clone(),
                        sets,
                        varied,
                        seed,
                    });
                }
            }
        }
        Ok(Sweep {
            file: file.to_path_buf(),
            root,
            device: f.device,
            seeds,
            slurm: f.slurm,
            runs,
        })
    }

    /// A short fingerprint of the listing (names, scripts, settings and seeds): a Slurm task
    /// checks it, so that a sweep file edited after submission cannot run the wrong entry.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for r in &self.runs {
            h.update(format!(
                "{}\0{}\0{}\0{}\n",
                r.name,
                r.script.display(),
                r.set_args().join("\0"),
                r.seed
            ));
        }
        h.finalize()
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The names of the varied keys, in the order of first appearance (columns of tables).
    pub fn varied_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for r in &self.runs {
            for (k, _) in &r.varied {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// The configurations in listing order, each with its runs (one per seed).
    pub fn configs(&self) -> Vec<(String, Vec<&Run>)> {
        let mut out: Vec<(String, Vec<&Run>)> = Vec::new();
        for r in &self.runs {
            match out.iter_mut().find(|(c, _)| *c == r.config) {
                Some((_, runs)) => runs.push(r),
                None => out.push((r.config.clone(), vec![r])),
            }
        }
        out
    }
}
