//! TensorBoard event files: every `log(...)` row's numbers as scalars and every `save_grid`
//! picture as an image, in `events.out.tfevents.<time>.<host>` in the run directory (one file per
//! process; TensorBoard reads every file of the folder). On by default; `--no-tensorboard` turns
//! it off.
//!
//! The format is TensorFlow's: a sequence of TFRecords (length, masked CRC-32C of the length,
//! the bytes, masked CRC-32C of the bytes), each holding an `Event` protocol buffer; the first
//! event names the file version. The messages are declared here with `prost` (only the fields
//! written), the checksums come from `crc32c`.

use crate::errors::{script_err, ScriptResult};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `tensorflow.Event` (the fields written).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    pub what: Option<What>,
}

/// What an event carries.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The first event of a file: `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(oneof = "Kind", tags = "2, 4")]
    pub kind: Option<Kind>,
}

/// A scalar or an image.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
}

/// `tensorflow.Summary.Image`: an encoded PNG.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// TensorFlow's masked CRC-32C of a record's parts.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One TFRecord around `data`.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Reads the events of a file written by [`Writer`] (or TensorFlow), checking every checksum;
/// an error names the file and the record.
pub fn read_events(path: &Path) -> Result<Vec<Event>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    let bad = |what: &str, n: usize| format!("{}: record {n}: {what}", path.display());
    while at < bytes.len() {
        let n = out.len();
        let head = bytes
            .get(at..at + 12)
            .ok_or_else(|| bad("truncated header", n))?;
        let len_bytes: [u8; 8] = head[..8].try_into().expect("8 bytes");
        let crc = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if crc != masked_crc(&len_bytes) {
            return Err(bad("the length's checksum does not match", n));
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| bad("length too large", n))?;
        let start = at + 12;
        let end = start
            .checked_add(len)
            .ok_or_else(|| bad("length too large", n))?;
        let data = bytes
            .get(start..end)
            .ok_or_else(|| bad("truncated data", n))?;
        let crc_bytes = bytes
            .get(end..end + 4)
            .ok_or_else(|| bad("truncated checksum", n))?;
        if u32::from_le_bytes(crc_bytes.try_into().expect("4 bytes")) != masked_crc(data) {
            return Err(bad("the data's checksum does not match", n));
        }
        out.push(Event::decode(data).map_err(|e| bad(&format!("not an Event: {e}"), n))?);
        at = end + 4;
    }
    Ok(out)
}

/// Appends events to one event file, flushing each, so a killed run keeps what it logged.
pub struct Writer {
    path: PathBuf,
    file: std::fs::File,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Writer {
    /// Creates a new event file in `dir` and writes its version event.
    pub fn create(dir: &Path) -> ScriptResult<Writer> {
        let host = hostname();
        let t = now();
        let mut name = format!("events.out.tfevents.{}.{host}", t as u64);
        // Two processes of one run in the same second (a quick resume) get distinct files.
        let mut k = 1;
        while dir.join(&name).exists() {
            name = format!("events.out.tfevents.{}.{host}.{k}", t as u64);
            k += 1;
        }
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| script_err(format!("cannot create {}: {e}", path.display())))?;
        let mut w = Writer { path, file };
        w.write(&Event {
            wall_time: t,
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        Ok(w)
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, e: &Event) -> ScriptResult<()> {
        self.file
            .write_all(&record(&e.encode_to_vec()))
            .and_then(|_| self.file.flush())
            .map_err(|err| script_err(format!("cannot append to {}: {err}", self.path.display())))
    }

    fn summary(&mut self, step: i64, value: Vec<SummaryValue>) -> ScriptResult<()> {
        self.write(&Event {
            wall_time: now(),
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }

    /// Scalars `(tag, value)` at `step`, in one event.
    pub fn scalars(&mut self, step: i64, values: &[(String, f64)]) -> ScriptResult<()> {
        if values.is_empty() {
            return Ok(());
        }
        let value = values
            .iter()
            .map(|(tag, v)| SummaryValue {
                tag: tag.clone(),
                kind: Some(Kind::SimpleValue(*v as f32)),
            })
            .collect();
        self.summary(step, value)
    }

    /// A PNG image under `tag` at `step`.
    pub fn image(
        &mut self,
        tag: &str,
        step: i64,
        png: &[u8],
        size: (u32, u32),
        channels: u8,
    ) -> ScriptResult<()> {
        self.summary(
            step,
            vec![SummaryValue {
                tag: tag.to_string(),
                kind: Some(Kind::Image(Image {
                    height: size.1 as i32,
                    width: size.0 as i32,
                    colorspace: channels as i32,
                    encoded_image_string: png.to_vec(),
                })),
            }],
        )
    }
}

fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// The TensorBoard tag and step of a picture saved as `name`: `samples_step500.png` is
/// `samples` at step 500 (likewise `epoch3`, `iter_20`), so one slider shows all of them; a name
/// without a number keeps its stem as the tag and has no step of its own.
pub fn image_tag_and_step(name: &str) -> (String, Option<i64>) {
    let stem = Path::new(name)
        .with_extension("")
        .to_string_lossy()
        .replace('\\', "/");
    match super::sample_image::numbered_part(&stem) {
        Some((key, part, digits)) => {
            let tag = format!("{}{}", &stem[..part.start], &stem[part.end..]);
            let tag = tag.trim_matches(['_', '-', ' ', '/']).to_string();
            let tag = if tag.is_empty() { key.to_string() } else { tag };
            (tag, digits.parse().ok())
        }
        None => (stem, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow() {
        // Values from TensorBoard's own implementation (tensorboard.compat.tensorflow_stub
        // .pywrap_tensorflow.masked_crc32c), computed once.
        assert_eq!(masked_crc(&0u64.to_le_bytes()), 0x0798_0329);
        assert_eq!(masked_crc(b"hello"), 0x191c_1fbb);
        // CRC-32C itself: the standard check value of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn image_tags_drop_the_step() {
        assert_eq!(
            image_tag_and_step("samples_step500.png"),
            ("samples".into(), Some(500))
        );
        assert_eq!(
            image_tag_and_step("samples_epoch3.png"),
            ("samples".into(), Some(3))
        );
        assert_eq!(
            image_tag_and_step("grids/g_iter-20.png"),
            ("grids/g".into(), Some(20))
        );
        assert_eq!(image_tag_and_step("step7.png"), ("step".into(), Some(7)));
        assert_eq!(
            image_tag_and_step("samples_final.png"),
            ("samples_final".into(), None)
        );
        assert_eq!(image_tag_and_step("real.png"), ("real".into(), None));
    }
}
