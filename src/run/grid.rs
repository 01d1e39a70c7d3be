//! `save_grid(images, name, nrow)`: a PNG grid of images `[N, C, H, W]` (C = 1 or 3; `[N, H, W]`
//! is taken as one channel), `nrow` images per row, 2-px grey (128) padding around every image.
//! Values are mapped from `[0, 1]`, or `[-1, 1]` when any value is negative, or from an explicit
//! `#{range: [lo, hi]}`, and clamped. `#{scores: t}` orders the images by score, ascending.
//! The picture written is upscaled (nearest, 2× at least; `scale`) and captioned (`caption`,
//! by default the step or epoch in the file name), and `#{gif: "samples.gif"}` also appends it to
//! a growing GIF: see [`super::sample_image`].

use super::sample_image::{append_gif_frame, Look, Pixels};
use super::RunHandle;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::Tensor;
use candle_core::DType;
use rhai::{Engine, Map, INT};
use std::path::Path;

const PAD: usize = 2;
const PAD_VALUE: u8 = 128;

/// Options of a grid.
#[derive(Default)]
pub struct GridOptions {
    pub range: Option<(f32, f32)>,
    pub scores: Option<Vec<f32>>,
}

impl GridOptions {
    pub fn from_map(opts: &Map) -> ScriptResult<GridOptions> {
        let mut g = GridOptions::default();
        for (k, v) in opts {
            match k.as_str() {
                "range" => g.range = Some(crate::data::parse_range(v)?),
                "scores" => {
                    let t = v.clone().try_cast::<Tensor>().ok_or_else(|| {
                        script_err("save_grid: `scores` must be a tensor with one score per image")
                    })?;
                    g.scores = Some(
                        t.0.flatten_all()
                            .and_then(|f| f.to_dtype(DType::F32))
                            .and_then(|f| f.to_vec1())
                            .ctx("save_grid scores")?,
                    );
                }
                other => {
                    return Err(script_err(format!(
                        "save_grid: unknown option `{other}`: expected range, scores, scale, caption or gif"
                    )))
                }
            }
        }
        Ok(g)
    }
}

/// Encodes a grid of `images` as PNG bytes (1×, no caption); returns the bytes and the pixel
/// size (w, h).
pub fn grid_png(
    images: &Tensor,
    nrow: usize,
    opts: &GridOptions,
) -> ScriptResult<(Vec<u8>, u32, u32)> {
    let (p, _) = grid_pixels(images, nrow, opts)?;
    Ok((p.png()?, p.width as u32, p.height as u32))
}

/// The pixels of a grid of `images` (1×, no caption) and the images' size (the larger of
/// height and width).
pub fn grid_pixels(
    images: &Tensor,
    nrow: usize,
    opts: &GridOptions,
) -> ScriptResult<(Pixels, usize)> {
    let t = &images.0;
    let (n, c, h, w) = match *t.dims() {
        [n, c, h, w] if c == 1 || c == 3 => (n, c, h, w),
        [n, h, w] => (n, 1, h, w),
        _ => {
            return Err(script_err(format!(
                "save_grid: expected images [N, C, H, W] with C = 1 or 3 (or [N, H, W]), got shape {:?}",
                t.dims()
            )))
        }
    };
    if n == 0 || h == 0 || w == 0 {
        return Err(script_err(format!(
            "save_grid: no images to draw (shape {:?})",
            t.dims()
        )));
    }
    if nrow == 0 {
        return Err(script_err(
            "save_grid: nrow (images per row) must be positive",
        ));
    }
    let data: Vec<f32> = t
        .flatten_all()
        .and_then(|f| f.to_dtype(DType::F32))
        .and_then(|f| f.to_vec1())
        .ctx("save_grid")?;
    let (lo, hi) = match opts.range {
        Some(r) => r,
        None => {
            if data.iter().any(|&x| x < 0.0) {
                (-1.0, 1.0)
            } else {
                (0.0, 1.0)
            }
        }
    };
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(s) = &opts.scores {
        if s.len() != n {
            return Err(script_err(format!(
                "save_grid: {} scores for {n} images",
                s.len()
            )));
        }
        order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    }
    let cols = nrow.min(n);
    let rows = n.div_ceil(cols);
    let gw = cols * (w + PAD) + PAD;
    let gh = rows * (h + PAD) + PAD;
    let mut px = vec![PAD_VALUE; gw * gh * c];
    let to_u8 = |x: f32| {
        let v = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
        if v.is_nan() {
            0
        } else {
            (v * 255.0).round() as u8
        }
    };
    for (slot, &i) in order.iter().enumerate() {
        let (gy, gx) = (slot / cols, slot % cols);
        let (oy, ox) = (PAD + gy * (h + PAD), PAD + gx * (w + PAD));
        for ch in 0..c {
            let plane = &data[(i * c + ch) * h * w..(i * c + ch + 1) * h * w];
            for y in 0..h {
                for x in 0..w {
                    px[((oy + y) * gw + ox + x) * c + ch] = to_u8(plane[y * w + x]);
                }
            }
        }
    }
    Ok((
        Pixels {
            data: px,
            width: gw,
            height: gh,
            channels: c,
        },
        h.max(w),
    ))
}

/// Writes a grid to `path` (atomically).
pub fn save_grid(
    images: &Tensor,
    path: &Path,
    nrow: usize,
    opts: &GridOptions,
) -> ScriptResult<()> {
    let (bytes, _, _) = grid_png(images, nrow, opts)?;
    crate::io::atomic_write(path, &bytes)
}

fn save(h: &RunHandle, t: &Tensor, name: &str, nrow: INT, opts: &Map) -> ScriptResult<String> {
    let mut opts = opts.clone();
    let look = Look::take_from(&mut opts, name)?;
    let opts = GridOptions::from_map(&opts)?;
    let nrow = usize::try_from(nrow)
        .map_err(|_| script_err(format!("save_grid: nrow must be positive, got {nrow}")))?;
    let (grid, side) = grid_pixels(t, nrow, &opts)?;
    let picture = look.apply(&grid, side)?;
    let path = h.0.borrow_mut().path(name, "png")?;
    let png = picture.png()?;
    crate::io::atomic_write(&path, &png)?;
    {
        // TensorBoard: `samples_step500.png` is the image `samples` at step 500.
        let (tag, step) = super::tensorboard::image_tag_and_step(name);
        let mut st = h.0.borrow_mut();
        let step = step.or(st.last_step).unwrap_or(0);
        if let Some(events) = st.events()? {
            let size = (picture.width as u32, picture.height as u32);
            events.image(&tag, step, &png, size, picture.channels as u8)?;
        }
    }
    if let Some(gif) = &look.gif {
        let gif_path = h.0.borrow_mut().path(gif, "gif")?;
        let old = std::fs::read(&gif_path).ok();
        let bytes = append_gif_frame(old.as_deref(), &picture)?;
        crate::io::atomic_write(&gif_path, &bytes)?;
    }
    Ok(path.display().to_string())
}

pub fn register(engine: &mut Engine, handle: &RunHandle) {
    let h = handle.clone();
    reg!(engine, "save_grid", "Writes a PNG grid of images [N,C,H,W] (nrow per row; range auto [0,1] or [-1,1]) into the run directory, upscaled (2× at least, nearest) and captioned with the step or epoch in the name (samples_step500.png: \"step 500\"); returns the path.", move |t: Tensor, name: &str, nrow: INT| save(&h, &t, name, nrow, &Map::new()));
    let h = handle.clone();
    reg!(
        engine,
        "save_grid",
        "save_grid with options #{range: [-1, 1], scores: t (sort the images ascending), scale: 1.. (default: 2× at least), caption: \"..\" (\"\" or false: none), gif: \"samples.gif\" (also append the picture as a frame of this growing GIF)}.",
        move |t: Tensor, name: &str, nrow: INT, opts: Map| save(&h, &t, name, nrow, &opts)
    );
}
