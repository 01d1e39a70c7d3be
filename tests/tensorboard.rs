//! TensorBoard event files, read back by a parser written here from TensorFlow's format (not the
//! writer's message definitions): the TFRecord framing and its masked CRC-32C checksums, then
//! the protocol-buffer fields of `Event`, `Summary`, `Summary.Value` and `Summary.Image`.

mod common;

use common::ganscript;
use std::path::Path;

/// TensorFlow's mask: `((crc >> 15) | (crc << 17)) + 0xa282ead8`, the rotation written as such.
fn masked(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// The records of a TFRecord file, every checksum checked.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(
            crc,
            masked(len_bytes),
            "length checksum of record {}",
            out.len()
        );
        let data = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(crc, masked(data), "data checksum of record {}", out.len());
        out.push(data.to_vec());
        at += 16 + len;
    }
    assert_eq!(at, bytes.len(), "trailing bytes");
    out
}

/// A protocol-buffer field: its number and its value.
#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Fixed64(u64),
    Bytes(Vec<u8>),
    Fixed32(u32),
}

fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*at];
        *at += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn fields(b: &[u8]) -> Vec<(u64, Field)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let key = varint(b, &mut at);
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(varint(b, &mut at)),
            1 => {
                at += 8;
                Field::Fixed64(u64::from_le_bytes(b[at - 8..at].try_into().unwrap()))
            }
            2 => {
                let n = varint(b, &mut at) as usize;
                at += n;
                Field::Bytes(b[at - n..at].to_vec())
            }
            5 => {
                at += 4;
                Field::Fixed32(u32::from_le_bytes(b[at - 4..at].try_into().unwrap()))
            }
            w => panic!("wire type {w}"),
        };
        out.push((num, f));
    }
    out
}

fn get(fs: &[(u64, Field)], num: u64) -> Vec<Field> {
    fs.iter()
        .filter(|(n, _)| *n == num)
        .map(|(_, f)| f.clone())
        .collect()
}

fn bytes(f: &Field) -> Vec<u8> {
    match f {
        Field::Bytes(b) => b.clone(),
        other => panic!("not bytes: {other:?}"),
    }
}

/// One summary value: (step, tag, scalar or image (width, height, PNG bytes)).
#[derive(Debug)]
enum Value {
    Scalar(f32),
    Image(u64, u64, Vec<u8>),
}

fn read(dir: &Path) -> (String, Vec<(i64, String, Value)>) {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let recs = records(&std::fs::read(&files[0]).unwrap());
    let first = fields(&recs[0]);
    let version = String::from_utf8(bytes(&get(&first, 3)[0])).unwrap();
    let mut out = Vec::new();
    for r in &recs[1..] {
        let ev = fields(r);
        match get(&ev, 1)[0] {
            // wall_time: seconds since 1970, after this code was written
            Field::Fixed64(bits) => assert!(f64::from_bits(bits) > 1.7e9),
            ref other => panic!("wall_time {other:?}"),
        }
        let step = match get(&ev, 2).first() {
            Some(Field::Varint(s)) => *s as i64,
            None => 0,
            other => panic!("step {other:?}"),
        };
        let summary = fields(&bytes(&get(&ev, 5)[0]));
        for v in get(&summary, 1) {
            let v = fields(&bytes(&v));
            let tag = String::from_utf8(bytes(&get(&v, 1)[0])).unwrap();
            let value = if let Some(Field::Fixed32(x)) = get(&v, 2).first() {
                Value::Scalar(f32::from_bits(*x))
            } else {
                let img = fields(&bytes(&get(&v, 4)[0]));
                let num = |n| match get(&img, n).first() {
                    Some(Field::Varint(x)) => *x,
                    other => panic!("image field {n}: {other:?}"),
                };
                Value::Image(num(2), num(1), bytes(&get(&img, 4)[0]))
            };
            out.push((step, tag, value));
        }
    }
    (version, out)
}

const SCRIPT: &str = r#"
for step in 1..=3 {
    log(#{ step: step, loss: 0.5 * step, note: "text is not a scalar" });
}
log(#{ epoch: 7, acc: 0.25 });
save_grid(zeros([4, 1, 8, 8]), "samples_step20.png", 2);
save_grid(ones([2, 3, 8, 8]), "real.png", 2);
"#;

#[test]
fn log_rows_and_grids_go_to_an_event_file_that_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tb.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let run = dir.path().join("run");
    let o = ganscript(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (version, values) = read(&run);
    assert_eq!(version, "brain.Event:2");
    let scalars: Vec<(i64, &str, f32)> = values
        .iter()
        .filter_map(|(s, t, v)| match v {
            Value::Scalar(x) => Some((*s, t.as_str(), *x)),
            _ => None,
        })
        .collect();
    // The step is the row's step, else its epoch (which is then not a series itself); strings
    // are not scalars.
    assert_eq!(
        scalars,
        [
            (1, "loss", 0.5),
            (2, "loss", 1.0),
            (3, "loss", 1.5),
            (7, "acc", 0.25)
        ]
    );
    let images: Vec<(i64, &str, u64, u64, &Vec<u8>)> = values
        .iter()
        .filter_map(|(s, t, v)| match v {
            Value::Image(w, h, png) => Some((*s, t.as_str(), *w, *h, png)),
            _ => None,
        })
        .collect();
    assert_eq!(images.len(), 2);
    // `samples_step20.png` is the image `samples` at step 20; `real.png` has no step of its own
    // and takes the last logged row's (epoch 7). The bytes are the PNG files saved beside.
    for ((step, tag, w, h, png), (want_step, want_tag, file)) in images.into_iter().zip([
        (20, "samples", "samples_step20.png"),
        (7, "real", "real.png"),
    ]) {
        assert_eq!((step, tag), (want_step, want_tag));
        assert_eq!(*png, std::fs::read(run.join(file)).unwrap(), "{file}");
        let img = image::load_from_memory(png).unwrap();
        assert_eq!((w, h), (img.width() as u64, img.height() as u64));
    }
}

#[test]
fn no_tensorboard_writes_no_event_file() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tb.rhai");
    std::fs::write(&script, SCRIPT).unwrap();
    let run = dir.path().join("run");
    let o = ganscript(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--no-tensorboard",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("metrics.jsonl").exists());
    let events = std::fs::read_dir(&run)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tfevents")
        })
        .count();
    assert_eq!(events, 0);
}
