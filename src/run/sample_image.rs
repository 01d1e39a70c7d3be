//! What turns a raw sample grid into a picture to look at: nearest-neighbour upscaling (small
//! images are unreadable at 1×), a caption band naming the step or epoch, and frames appended to
//! a growing animated GIF (`samples.gif`).
//!
//! Pixels are 8-bit, row-major, interleaved, 1 (grey) or 3 (RGB) channels.

use crate::errors::{script_err, ScriptResult};
use plotters::prelude::*;
use std::path::Path;

/// The height in pixels of the caption band above a grid.
pub const CAPTION_HEIGHT: usize = 24;
/// The time each frame of a samples GIF is shown, in hundredths of a second.
pub const GIF_FRAME_DELAY: u16 = 50;
/// The longest side an automatically upscaled grid grows to (it is upscaled 2× at least).
const AUTO_MAX_SIDE: usize = 1600;
/// Images are upscaled until each is this many pixels high (at least 2×).
const AUTO_IMAGE_SIDE: usize = 64;

/// An image: pixels, width, height, channels (1 or 3).
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl Pixels {
    /// Encodes as PNG (grey or RGB).
    pub fn png(&self) -> ScriptResult<Vec<u8>> {
        let (w, h) = (self.width as u32, self.height as u32);
        let mut out = Vec::new();
        let cursor = &mut std::io::Cursor::new(&mut out);
        let res = if self.channels == 1 {
            image::GrayImage::from_raw(w, h, self.data.clone())
                .ok_or_else(|| script_err("save_grid: internal size error"))?
                .write_to(cursor, image::ImageFormat::Png)
        } else {
            image::RgbImage::from_raw(w, h, self.data.clone())
                .ok_or_else(|| script_err("save_grid: internal size error"))?
                .write_to(cursor, image::ImageFormat::Png)
        };
        res.map_err(|e| script_err(format!("save_grid: cannot encode PNG: {e}")))?;
        Ok(out)
    }
}

/// The automatic upscaling factor of a grid of `image_side`-pixel images that is `grid_side`
/// pixels on its longer side: each image at least [`AUTO_IMAGE_SIDE`] pixels, the grid at most
/// [`AUTO_MAX_SIDE`], and 2× at least whatever the size.
pub fn auto_scale(image_side: usize, grid_side: usize) -> usize {
    let want = AUTO_IMAGE_SIDE.div_ceil(image_side.max(1));
    let cap = AUTO_MAX_SIDE / grid_side.max(1);
    want.min(cap).max(2)
}

/// Nearest-neighbour upscaling by an integer factor.
pub fn upscale(p: &Pixels, k: usize) -> Pixels {
    if k <= 1 {
        return p.clone();
    }
    let (w, c) = (p.width, p.channels);
    let nw = w * k;
    let mut data = Vec::with_capacity(p.data.len() * k * k);
    for y in 0..p.height {
        let row = &p.data[y * w * c..(y + 1) * w * c];
        let mut wide = Vec::with_capacity(nw * c);
        for px in row.chunks_exact(c) {
            for _ in 0..k {
                wide.extend_from_slice(px);
            }
        }
        for _ in 0..k {
            data.extend_from_slice(&wide);
        }
    }
    Pixels {
        data,
        width: nw,
        height: p.height * k,
        channels: c,
    }
}

/// The step-like number in a file stem: the first of `step`, `epoch`, `iter` (in any case)
/// followed by digits, directly or after `_`, `-` or spaces: the key, the byte range of the
/// whole part (`step_500`) in `stem`, and the digits.
pub(crate) fn numbered_part(stem: &str) -> Option<(&'static str, std::ops::Range<usize>, &str)> {
    // ASCII lowering keeps byte positions, so they index `stem` itself.
    let lower = stem.to_ascii_lowercase();
    for key in ["step", "epoch", "iter"] {
        let mut from = 0;
        while let Some(i) = lower[from..].find(key) {
            let start = from + i;
            let after = &stem[start + key.len()..];
            let sep = after.len() - after.trim_start_matches(['_', '-', ' ']).len();
            let n = after[sep..].bytes().take_while(u8::is_ascii_digit).count();
            if n > 0 {
                let end = start + key.len() + sep + n;
                return Some((key, start..end, &stem[end - n..end]));
            }
            from = start + key.len();
        }
    }
    None
}

/// The caption of a grid saved as `name` when the script gives none: `step 500` for a name
/// with `step500` (or `step_500`, `step-500`) in it, `epoch 3` likewise, else the file name
/// without its extension and folders, `_` read as spaces.
pub fn default_caption(name: &str) -> String {
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match numbered_part(&stem) {
        Some((key, _, digits)) => {
            let n = digits.trim_start_matches('0');
            format!("{key} {}", if n.is_empty() { "0" } else { n })
        }
        None => stem.replace('_', " "),
    }
}

/// The caption band: `text` in black on white, `width` wide, as 1 or 3 channels.
fn caption_band(text: &str, width: usize, channels: usize) -> ScriptResult<Vec<u8>> {
    super::plot::ensure_font();
    let (w, h) = (width as u32, CAPTION_HEIGHT as u32);
    let mut rgb = vec![255u8; width * CAPTION_HEIGHT * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let style = (super::plot::FONT_NAME, 16).into_font().color(&BLACK).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        root.draw(&Text::new(
            text.to_string(),
            ((w / 2) as i32, (h / 2) as i32),
            style,
        ))
        .map_err(|e| script_err(format!("save_grid: cannot draw the caption: {e:?}")))?;
        root.present()
            .map_err(|e| script_err(format!("save_grid: cannot draw the caption: {e:?}")))?;
    }
    Ok(if channels == 1 {
        // Black text on white: every channel is the same; keep one.
        rgb.chunks_exact(3).map(|p| p[0]).collect()
    } else {
        rgb
    })
}

/// `p` with a caption band of `text` on top.
pub fn caption(p: &Pixels, text: &str) -> ScriptResult<Pixels> {
    let mut data = caption_band(text, p.width, p.channels)?;
    data.extend_from_slice(&p.data);
    Ok(Pixels {
        data,
        width: p.width,
        height: p.height + CAPTION_HEIGHT,
        channels: p.channels,
    })
}

/// The 256-level grey palette every samples GIF carries as its global palette (grey frames use
/// it exactly; RGB frames bring a local palette).
fn grey_palette() -> Vec<u8> {
    (0..=255u8).flat_map(|v| [v, v, v]).collect()
}

fn gif_err(e: impl std::fmt::Display) -> Box<rhai::EvalAltResult> {
    script_err(format!("save_grid: cannot encode the GIF: {e}"))
}

/// The bytes of a GIF of `width`×`height` with `frames` (header, frames, trailer).
fn encode_gif(width: u16, height: u16, frames: &[gif::Frame]) -> ScriptResult<Vec<u8>> {
    let mut enc = gif::Encoder::new(Vec::new(), width, height, &grey_palette()).map_err(gif_err)?;
    enc.set_repeat(gif::Repeat::Infinite).map_err(gif_err)?;
    for f in frames {
        enc.write_frame(f).map_err(gif_err)?;
    }
    enc.into_inner().map_err(gif_err)
}

/// `existing` (the bytes of a GIF this module wrote, or nothing) with the frame `p` appended:
/// the earlier frames are kept byte for byte, not decoded or re-encoded.
pub fn append_gif_frame(existing: Option<&[u8]>, p: &Pixels) -> ScriptResult<Vec<u8>> {
    let (w, h) = match (u16::try_from(p.width), u16::try_from(p.height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(script_err(format!(
                "save_grid: a {}×{} grid is too large for a GIF frame (65535 at most)",
                p.width, p.height
            )))
        }
    };
    let mut frame = if p.channels == 1 {
        gif::Frame::from_indexed_pixels(w, h, p.data.clone(), None)
    } else {
        gif::Frame::from_rgb_speed(w, h, &p.data, 10)
    };
    frame.delay = GIF_FRAME_DELAY;
    let header = encode_gif(w, h, &[])?;
    let header = &header[..header.len() - 1];
    let single = encode_gif(w, h, &[frame])?;
    let frame_bytes = &single[header.len()..single.len() - 1];
    let mut out = match existing {
        None => header.to_vec(),
        Some(old) => {
            if !old.starts_with(header) || old.last() != Some(&0x3B) {
                let size = if old.len() >= 10 && old.starts_with(b"GIF") {
                    format!(
                        "{}×{}",
                        u16::from_le_bytes([old[6], old[7]]),
                        u16::from_le_bytes([old[8], old[9]])
                    )
                } else {
                    "an unknown size".to_string()
                };
                return Err(script_err(format!(
                    "save_grid: cannot add a {w}×{h} frame to a GIF of {size} (written by another grid size, or not by save_grid)"
                )));
            }
            old[..old.len() - 1].to_vec()
        }
    };
    out.extend_from_slice(frame_bytes);
    out.push(0x3B);
    Ok(out)
}

/// How `save_grid` dresses a grid: the options `scale`, `caption` and `gif` of its map.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// The upscaling factor; `None`: [`auto_scale`].
    pub scale: Option<usize>,
    /// The caption; `None`: none.
    pub caption: Option<String>,
    /// The GIF (in the run directory) the picture is appended to as a frame.
    pub gif: Option<String>,
}

impl Look {
    /// Removes `scale`, `caption` and `gif` from `opts` (the grid's other options stay) and
    /// returns them, with the defaults: automatic scale, a caption from `name`
    /// ([`default_caption`]), no GIF.
    pub fn take_from(opts: &mut rhai::Map, name: &str) -> ScriptResult<Look> {
        let scale = match opts.remove("scale") {
            None => None,
            Some(v) => match v.as_int() {
                Ok(k) if (1..=64).contains(&k) => Some(k as usize),
                _ => {
                    return Err(script_err(format!(
                        "save_grid: `scale` must be an integer from 1 to 64, got {v}"
                    )))
                }
            },
        };
        let caption = match opts.remove("caption") {
            None => Some(default_caption(name)),
            Some(v) if v.is_bool() => v
                .as_bool()
                .ok()
                .filter(|b| *b)
                .map(|_| default_caption(name)),
            Some(v) if v.is_string() => Some(v.to_string()).filter(|s| !s.is_empty()),
            Some(v) => {
                return Err(script_err(format!(
                    "save_grid: `caption` must be a string (\"\" or false: none), got {}",
                    v.type_name()
                )))
            }
        };
        let gif = match opts.remove("gif") {
            None => None,
            Some(v) if v.is_string() => Some(v.to_string()).filter(|s| !s.is_empty()),
            Some(v) => {
                return Err(script_err(format!(
                    "save_grid: `gif` must be a file name (\"samples.gif\"), got {}",
                    v.type_name()
                )))
            }
        };
        Ok(Look {
            scale,
            caption,
            gif,
        })
    }

    /// The grid `p` (of `image_side`-pixel images) upscaled and captioned.
    pub fn apply(&self, p: &Pixels, image_side: usize) -> ScriptResult<Pixels> {
        let k = self
            .scale
            .unwrap_or_else(|| auto_scale(image_side, p.width.max(p.height)));
        let big = upscale(p, k);
        match &self.caption {
            Some(c) => caption(&big, c),
            None => Ok(big),
        }
    }
}
