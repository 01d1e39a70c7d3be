//! Files written atomically (a `.tmp` beside the target, then a rename) and safetensors files
//! with a CRC-32 per tensor, checked on load: what nets, optimizers, checkpoints and run outputs
//! are saved with. A killed write leaves the previous file whole, and [`remove_stale_tmp`]
//! clears what it left.

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use candle_core::Tensor as CT;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: `<path>.tmp` in the same directory, then a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> ScriptResult<()> {
    write_atomically(path, bytes).map_err(script_err)
}

/// [`atomic_write`] with a plain error message (for code outside a script call).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A stale `.tmp` (a killed write) is replaced; `create_new` never writes through a link.
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    Ok(std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?)
}

/// The safetensors metadata key holding each tensor's CRC-32 (a JSON map of 8 hex digits).
pub const CHECKSUM_KEY: &str = "ganscript.crc32";

/// Serializes named tensors (and optional string metadata) as safetensors, with the CRC-32 of
/// each tensor's bytes in the metadata ([`CHECKSUM_KEY`]), and writes the file atomically. The
/// caller names the file in its error message.
pub fn write_safetensors<'a>(
    path: &Path,
    tensors: impl IntoIterator<Item = (&'a str, &'a candle_core::Tensor)>,
    meta: Option<HashMap<String, String>>,
) -> Result<(), Error> {
    let views: Vec<(&str, candle_core::Tensor)> = tensors
        .into_iter()
        .map(|(k, t)| t.contiguous().map(|t| (k, t)))
        .collect::<candle_core::Result<_>>()
        .map_err(|e| e.to_string())?;
    let sums: serde_json::Map<String, Value> = views
        .iter()
        .map(|(k, t)| {
            let crc = crc32fast::hash(&safetensors::View::data(t));
            (k.to_string(), json!(format!("{crc:08x}")))
        })
        .collect();
    let mut meta = meta.unwrap_or_default();
    meta.insert(CHECKSUM_KEY.to_string(), Value::Object(sums).to_string());
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| e.to_string())?;
    write_atomically(path, &bytes)
}

/// Checks the CRC-32 of every tensor of a safetensors file against the ones recorded when it
/// was written. `Ok(false)`: the file records none (written by an older ganscript, or by another
/// program). An error names the damaged tensor; `what` names the file.
pub fn verify_safetensors(bytes: &[u8], what: &str) -> Result<bool, Error> {
    let unreadable = |e: safetensors::SafeTensorError| Error::Unreadable {
        what: what.to_string(),
        reason: e.to_string(),
    };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(unreadable)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(unreadable)?;
    let Some(recorded) = header.metadata().as_ref().and_then(|m| m.get(CHECKSUM_KEY)) else {
        return Ok(false);
    };
    let recorded: serde_json::Map<String, Value> =
        serde_json::from_str(recorded).map_err(|e| format!("{what}: unreadable checksums: {e}"))?;
    let mut seen = 0;
    for (name, view) in st.tensors() {
        let want = recorded
            .get(&name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{what}: tensor `{name}` has no recorded checksum"))?;
        let got = format!("{:08x}", crc32fast::hash(view.data()));
        if got != want {
            return Err(Error::Msg(format!(
                "{what}: tensor `{name}` is damaged: the CRC-32 of its bytes is {got}, the file \
                 recorded {want} when it was written"
            )));
        }
        seen += 1;
    }
    if seen != recorded.len() {
        let names: std::collections::HashSet<String> =
            st.names().into_iter().map(|n| n.to_string()).collect();
        let missing: Vec<&String> = recorded.keys().filter(|k| !names.contains(*k)).collect();
        return Err(Error::Msg(format!(
            "{what}: tensor `{}` is missing (the file recorded a checksum for it)",
            missing.first().map(|s| s.as_str()).unwrap_or("?")
        )));
    }
    Ok(true)
}

/// Writes tensors as safetensors to `path.tmp`, then renames it to `path`.
pub fn save_tensors_atomic(map: &HashMap<String, CT>, path: &Path) -> Result<(), Error> {
    Ok(
        write_safetensors(path, map.iter().map(|(k, t)| (k.as_str(), t)), None)
            .map_err(|e| format!("save {}: {e}", path.display()))?,
    )
}

/// Reads every tensor of a safetensors file (on the current device), with clear errors.
pub fn load_tensors(path: &Path) -> Result<HashMap<String, CT>, Error> {
    let data = std::fs::read(path).map_err(|e| format!("load {}: {e}", path.display()))?;
    // Files written by ganscript carry checksums; others (e.g. exported by PyTorch) do not.
    // (A file that does not parse is reported below.)
    match verify_safetensors(&data, &format!("load {}", path.display())) {
        Err(Error::Unreadable { .. }) | Ok(_) => {}
        Err(e) => return Err(e),
    }
    Ok(
        candle_core::safetensors::load_buffer(&data, &crate::device::current_device()).map_err(
            |e| {
                format!(
                    "load {}: not a valid safetensors file (truncated or corrupt?): {e}",
                    path.display()
                )
            },
        )?,
    )
}

/// Removes the temporary files a killed atomic write left in `dir` and its sub-folders (not
/// following links): `*.{json,csv,png,safetensors}.tmp`, the names [`write_atomically`] uses for
/// what ganscript writes.
pub fn remove_stale_tmp(dir: &Path) {
    fn ours(p: &Path) -> bool {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.strip_suffix(".tmp").is_some_and(|stem| {
            [".json", ".csv", ".png", ".safetensors"]
                .iter()
                .any(|x| stem.ends_with(x))
        })
    }
    fn walk(dir: &Path, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(|e| e.ok()) {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() && depth < 4 {
                walk(&p, depth + 1);
            } else if ft.is_file() && ours(&p) {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    walk(dir, 0);
}
