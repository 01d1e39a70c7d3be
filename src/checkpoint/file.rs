//! The checkpoint file: one safetensors file holding every tensor of a run's state, with the
//! non-tensor state (script values, RNG, step counters) as JSON in its metadata. Written to a
//! temporary file and renamed, so a checkpoint on disk is always complete. Each tensor's bytes
//! carry a CRC-32 (see [`crate::io::write_safetensors`]), checked on load: a damaged tensor is
//! an error naming it.

use crate::errors::Error;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key holding the JSON state.
const META_KEY: &str = "ganscript";
/// Format tag checked on load.
pub const FORMAT: &str = "ganscript-checkpoint/1";

/// Writes `tensors` and `state` to `path` atomically (temporary file, then rename).
pub fn write(
    path: &Path,
    tensors: &[(String, Tensor)],
    state: &serde_json::Value,
) -> Result<(), Error> {
    let mut meta = HashMap::new();
    let doc = serde_json::json!({ "format": FORMAT, "state": state });
    meta.insert(META_KEY.to_string(), doc.to_string());
    Ok(crate::io::write_safetensors(
        path,
        tensors.iter().map(|(k, t)| (k.as_str(), t)),
        Some(meta),
    )
    .map_err(|e| format!("cannot write checkpoint {}: {e}", path.display()))?)
}

/// Reads a checkpoint: its tensors (on `device`) and its JSON state. Every problem (missing,
/// truncated, not a ganscript checkpoint) is an error naming the file.
pub fn read(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, serde_json::Value), Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read checkpoint {}: {e}", path.display()))?;
    let what = format!("checkpoint {}", path.display());
    let verified = crate::io::verify_safetensors(&bytes, &what)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format!("checkpoint {} is damaged or truncated: {e}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| format!("checkpoint {} is damaged or truncated: {e}", path.display()))?;
    let meta = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| {
            format!(
                "{} is a safetensors file but not a ganscript checkpoint",
                path.display()
            )
        })?;
    let doc: serde_json::Value = serde_json::from_str(meta)
        .map_err(|e| format!("checkpoint {}: unreadable state: {e}", path.display()))?;
    if doc["format"] != FORMAT {
        return Err(Error::Msg(format!(
            "checkpoint {}: unknown format {}",
            path.display(),
            doc["format"]
        )));
    }
    if !verified {
        eprintln!(
            "warning: {what} records no checksums (written by an older ganscript): its tensors \
             cannot be verified"
        );
    }
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let t = candle_core::safetensors::Load::load(&view, device)
            .map_err(|e| format!("checkpoint {}: tensor `{name}`: {e}", path.display()))?;
        tensors.insert(name, t);
    }
    Ok((tensors, doc["state"].clone()))
}
