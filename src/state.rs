//! Script objects that can go into a checkpoint's state map. A type implements [`Saved`] (its
//! state as a script map, and back) and its layer calls [`register`] when it registers the type
//! with the engine; the checkpoint code then saves and restores every registered type by its
//! [`Saved::TAG`], without naming any of them.

use crate::errors::ScriptResult;
use rhai::{Dynamic, Map};
use std::sync::RwLock;

/// A script value whose state is a map of plain values (numbers, strings, `()`, arrays, maps).
pub trait Saved: Clone + Send + Sync + Sized + 'static {
    /// The tag the value is stored under in a checkpoint (never change it: old files use it).
    const TAG: &'static str;
    /// What the type is called in messages, in the plural ("schedules").
    const PLURAL: &'static str;
    /// The value's state.
    fn state_map(&self) -> Map;
    /// The value rebuilt from a map made by [`Saved::state_map`].
    fn from_state_map(map: &Map) -> ScriptResult<Self>;
}

/// How one registered type is saved and restored.
#[derive(Clone, Copy)]
pub struct Codec {
    pub tag: &'static str,
    pub plural: &'static str,
    /// The value's state, if the value is of this type.
    pub encode: fn(&Dynamic) -> Option<Map>,
    /// The value rebuilt from its state.
    pub decode: fn(&Map) -> ScriptResult<Dynamic>,
}

static CODECS: RwLock<Vec<Codec>> = RwLock::new(Vec::new());

fn encode<T: Saved>(v: &Dynamic) -> Option<Map> {
    if v.is::<T>() {
        v.clone().try_cast::<T>().map(|t| t.state_map())
    } else {
        None
    }
}

fn decode<T: Saved>(m: &Map) -> ScriptResult<Dynamic> {
    Ok(Dynamic::from(T::from_state_map(m)?))
}

/// Makes `T` savable in checkpoints (idempotent).
pub fn register<T: Saved>() {
    let mut codecs = CODECS.write().unwrap_or_else(|e| e.into_inner());
    if !codecs.iter().any(|c| c.tag == T::TAG) {
        codecs.push(Codec {
            tag: T::TAG,
            plural: T::PLURAL,
            encode: encode::<T>,
            decode: decode::<T>,
        });
    }
}

/// The registered types.
pub fn codecs() -> Vec<Codec> {
    CODECS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The codec stored under `tag`.
pub fn codec(tag: &str) -> Option<Codec> {
    codecs().into_iter().find(|c| c.tag == tag)
}
