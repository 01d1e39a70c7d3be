//! Settings given on the command line (`--set key=value`) and read by scripts.
//!
//! Scripts see them two ways: the constant map `config`, and `setting(name, default)`, which
//! returns the value given on the command line (converted to the default's type) or the default,
//! and records the resolved value for the run's `config.json`. Keys given with `--set` that the
//! script never reads are reported, so a typo does not silently run the default experiment.

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use rhai::{Dynamic, Engine, Map, FLOAT, INT};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The settings of one run, shared between the host and the script's `setting` calls.
#[derive(Default, Debug)]
pub struct Settings {
    /// Values from `--set`, in command-line order of first appearance.
    pub given: BTreeMap<String, Dynamic>,
    /// Every setting the script read, with the value it got.
    pub resolved: BTreeMap<String, Dynamic>,
    read: BTreeSet<String>,
}

pub type SharedSettings = Rc<RefCell<Settings>>;

/// Parses a command-line value: booleans, integers, floats, else a string (quotes removed).
pub fn parse_value(text: &str) -> Dynamic {
    let t = text.trim();
    match t {
        "true" => return Dynamic::from_bool(true),
        "false" => return Dynamic::from_bool(false),
        _ => {}
    }
    if let Ok(i) = t.parse::<INT>() {
        return Dynamic::from_int(i);
    }
    if let Ok(f) = t.parse::<FLOAT>() {
        return Dynamic::from_float(f);
    }
    let unquoted = t
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| t.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(t);
    Dynamic::from(unquoted.to_string())
}

impl Settings {
    /// Builds settings from `key=value` strings.
    pub fn from_pairs<S: AsRef<str>>(pairs: &[S]) -> Result<Settings, Error> {
        let mut s = Settings::default();
        for p in pairs {
            s.set_pair(p.as_ref())?;
        }
        Ok(s)
    }

    pub fn set_pair(&mut self, pair: &str) -> Result<(), Error> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair}: expected key=value"))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(Error::Msg(format!(
                "--set {pair}: the key must be a name (letters, digits, _)"
            )));
        }
        self.given.insert(k.to_string(), parse_value(v));
        Ok(())
    }

    /// The `config` map scripts see.
    pub fn as_map(&self) -> Map {
        self.given
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect()
    }

    /// Keys given on the command line that the script never read with `setting`.
    pub fn unread(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.read.contains(*k))
            .cloned()
            .collect()
    }

    /// The value of setting `name`: the command-line value converted to `default`'s type, or
    /// `default`.
    pub fn resolve(&mut self, name: &str, default: Dynamic) -> ScriptResult<Dynamic> {
        self.read.insert(name.to_string());
        let value = match self.given.get(name) {
            None => default,
            Some(given) => convert_like(name, given, &default)?,
        };
        self.resolved.insert(name.to_string(), value.clone());
        Ok(value)
    }
}

fn convert_like(name: &str, given: &Dynamic, default: &Dynamic) -> ScriptResult<Dynamic> {
    let bad = |want: &str| {
        script_err(format!(
            "--set {name}={given}: expected {want} (the script's default is {default})"
        ))
    };
    if default.is_unit() {
        return Ok(given.clone());
    }
    if default.is_int() {
        if let Ok(i) = given.as_int() {
            return Ok(Dynamic::from_int(i));
        }
        if let Ok(f) = given.as_float() {
            if f.fract() == 0.0 {
                return Ok(Dynamic::from_int(f as INT));
            }
        }
        return Err(bad("an integer"));
    }
    if default.is_float() {
        if let Ok(f) = given.as_float() {
            return Ok(Dynamic::from_float(f));
        }
        if let Ok(i) = given.as_int() {
            return Ok(Dynamic::from_float(i as FLOAT));
        }
        return Err(bad("a number"));
    }
    if default.is_bool() {
        return given
            .as_bool()
            .map(Dynamic::from_bool)
            .map_err(|_| bad("true or false"));
    }
    if default.is_string() {
        return Ok(Dynamic::from(given.to_string()));
    }
    Ok(given.clone())
}

pub fn register(engine: &mut Engine, settings: SharedSettings) {
    let s = settings.clone();
    reg!(engine, "setting", "The value of `--set name=...` converted to the default's type, or `default`; recorded in the run's config.", move |name: &str, default: Dynamic| {
        s.borrow_mut().resolve(name, default)
    });
    let s = settings;
    reg!(
        engine,
        "has_setting",
        "True if `--set name=...` was given.",
        move |name: &str| { s.borrow().given.contains_key(name) }
    );
}
