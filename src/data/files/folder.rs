//! Folders of PNG/JPEG images (one sub-folder per class, or flat).

use super::*;

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> ScriptResult<()> {
    check_read("image_folder", dir).map_err(script_err)?;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| script_err(format!("image_folder: cannot list {}: {e}", dir.display())))?;
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() && depth < 8 {
            collect_images(&p, out, depth + 1)?;
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .map(|x| matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
            .unwrap_or(false)
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Every PNG/JPEG under `dir` (recursively, sorted by path), RGB, shorter side resized to
/// `size` then centre-cropped to `size × size`. When every image sits in a sub-folder, the
/// sub-folders are the classes (labels 0.. in sorted order).
pub fn image_folder(dir: &Path, size: usize) -> ScriptResult<Dataset> {
    if size == 0 {
        return Err(script_err("image_folder: size must be positive"));
    }
    if !dir.is_dir() {
        return Err(script_err(format!(
            "image_folder: directory {} does not exist",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    collect_images(dir, &mut files, 0)?;
    files.sort();
    if files.is_empty() {
        return Err(script_err(format!(
            "image_folder: no images in {} (expected .png, .jpg or .jpeg files)",
            dir.display()
        )));
    }
    let class_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(dir).ok()?;
        let mut comps = rel.components();
        let first = comps.next()?;
        comps.next()?;
        Some(first.as_os_str().to_string_lossy().to_string())
    };
    let classes: Option<Vec<String>> = files.iter().map(|p| class_of(p)).collect();
    let labels = classes.map(|c| {
        let mut names = c.clone();
        names.sort();
        names.dedup();
        c.iter()
            .map(|n| names.binary_search(n).unwrap_or(0) as i64)
            .collect::<Vec<i64>>()
    });
    crate::limits::check(
        &format!("image_folder: {} images of 3×{size}×{size}", files.len()),
        (files.len() as u128 * 3 * 4).saturating_mul(size as u128 * size as u128),
    )?;
    let plane = size * size;
    let mut data = Vec::with_capacity(files.len() * 3 * plane);
    for p in &files {
        check_read("image_folder", p).map_err(script_err)?;
        let img = image::open(p)
            .map_err(|e| script_err(format!("cannot read image {}: {e}", p.display())))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(script_err(format!("image {} is empty", p.display())));
        }
        let s = size as f64 / w.min(h) as f64;
        let nw = ((w as f64 * s).round() as u32).max(size as u32);
        let nh = ((h as f64 * s).round() as u32).max(size as u32);
        let resized = if (nw, nh) == (w, h) {
            img
        } else {
            image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle)
        };
        let (x0, y0) = ((nw as usize - size) / 2, (nh as usize - size) / 2);
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let px = resized.get_pixel((x0 + x) as u32, (y0 + y) as u32);
                    data.push(px[c] as f32 / 255.0);
                }
            }
        }
    }
    let mut ds = Dataset::new(
        format!("image_folder({})", dir.display()),
        data,
        vec![files.len(), 3, size, size],
    );
    ds.labels = labels.map(Arc::new);
    ds.range = Some((0.0, 1.0));
    Ok(ds)
}
