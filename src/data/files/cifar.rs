//! CIFAR-10, binary version.

use super::*;

const CIFAR_RECORD: usize = 3073;

/// CIFAR-10 binary version: `data_batch_*.bin` in `dir` (or in `dir/cifar-10-batches-bin`);
/// `test_batch.bin` alone if there are no training batches.
pub fn cifar10(dir: &Path) -> ScriptResult<Dataset> {
    cifar10_limited(dir, None)
}

/// The first `limit` records of [`cifar10`] (only those are read).
pub fn cifar10_limited(dir: &Path, limit: Option<usize>) -> ScriptResult<Dataset> {
    let sub = dir.join("cifar-10-batches-bin");
    let dir = if !dir.join("data_batch_1.bin").exists() && sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    };
    let names = list_dir(&dir, "cifar10")?;
    let mut batches: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
        .collect();
    if batches.is_empty() {
        batches = names.iter().filter(|n| *n == "test_batch.bin").collect();
    }
    if batches.is_empty() {
        return Err(script_err(format!(
            "cifar10: no CIFAR-10 binary batches in {}: expected data_batch_1.bin … data_batch_5.bin \
             (the \"CIFAR-10 binary version\", 10000 × 3073 bytes each); found: {}",
            dir.display(),
            if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
        )));
    }
    // Every batch's size is checked, and the records to read against the budget, before any
    // is read.
    let mut plan = Vec::new();
    let mut wanted = limit.unwrap_or(usize::MAX);
    for name in batches {
        let path = dir.join(name);
        let len = std::fs::metadata(&path)
            .map_err(|e| script_err(format!("cannot read {}: {e}", path.display())))?
            .len();
        if len == 0 || len % CIFAR_RECORD as u64 != 0 {
            return Err(script_err(format!(
                "{}: truncated or not a CIFAR-10 batch: {len} bytes is not a multiple of the \
                 {CIFAR_RECORD}-byte record (1 label + 3072 pixels); a full batch has {} bytes",
                path.display(),
                10000 * CIFAR_RECORD
            )));
        }
        let records = ((len / CIFAR_RECORD as u64) as usize).min(wanted);
        wanted -= records;
        if records > 0 {
            plan.push((path, records));
        }
    }
    let total: usize = plan.iter().map(|(_, r)| r).sum();
    crate::limits::check(
        &format!("cifar10: {total} images of 3×32×32"),
        (total as u128 * 3072 * 4).saturating_add(10000 * CIFAR_RECORD as u128),
    )?;
    let mut data = Vec::with_capacity(total * 3072);
    let mut labels = Vec::with_capacity(total);
    for (path, records) in plan {
        let mut bytes = Vec::with_capacity(records * CIFAR_RECORD);
        std::fs::File::open(&path)
            .and_then(|f| {
                f.take((records * CIFAR_RECORD) as u64)
                    .read_to_end(&mut bytes)
            })
            .map_err(|e| script_err(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() < records * CIFAR_RECORD {
            return Err(script_err(format!(
                "{}: truncated while reading: {} bytes, expected {}",
                path.display(),
                bytes.len(),
                records * CIFAR_RECORD
            )));
        }
        for (i, rec) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
            if rec[0] > 9 {
                return Err(script_err(format!(
                    "{}: record {i} has label {}, CIFAR-10 labels are 0..9 (not a CIFAR-10 batch?)",
                    path.display(),
                    rec[0]
                )));
            }
            labels.push(rec[0] as i64);
            data.extend(rec[1..].iter().map(|&p| p as f32 / 255.0));
        }
    }
    let n = labels.len();
    let mut ds = Dataset::new(
        format!("cifar10({})", dir.display()),
        data,
        vec![n, 3, 32, 32],
    );
    ds.labels = Some(Arc::new(labels));
    ds.range = Some((0.0, 1.0));
    Ok(ds)
}
