//! Sample grids as pictures: upscaled (nearest, 2× at least), captioned with the step or epoch,
//! and appended as frames to a growing GIF.

mod common;

use ganscript::run::grid::{grid_png, GridOptions};
use ganscript::run::sample_image::{auto_scale, default_caption, CAPTION_HEIGHT};
use std::path::Path;

/// Runs `body` as a script with the run directory `out`; the error message if it fails.
fn run(dir: &Path, out: &Path, body: &str) -> Result<(), String> {
    let script = dir.join("s.rhai");
    std::fs::write(&script, body).unwrap();
    let o = common::command()
        .arg("run")
        .arg(&script)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// The 1× grid of the same images, drawn by `grid_png`, as grey pixels.
fn raw_grid(values: &[f32], n: usize, side: usize, nrow: usize) -> image::GrayImage {
    let t = ganscript::Tensor(
        candle_core::Tensor::from_vec(
            values.to_vec(),
            (n, 1, side, side),
            &candle_core::Device::Cpu,
        )
        .unwrap(),
    );
    let (bytes, _, _) = grid_png(&t, nrow, &GridOptions::default()).unwrap();
    image::load_from_memory(&bytes).unwrap().to_luma8()
}

/// The images the scripts draw: `n` images `side`×`side` with pixel (i, y, x) =
/// ((i·7 + y·3 + x) mod 11) / 10.
fn pattern(n: usize, side: usize) -> Vec<f32> {
    let mut v = Vec::new();
    for i in 0..n {
        for y in 0..side {
            for x in 0..side {
                v.push(((i * 7 + y * 3 + x) % 11) as f32 / 10.0);
            }
        }
    }
    v
}

fn pattern_script(n: usize, side: usize) -> String {
    format!(
        "fn images(n, side) {{ let v = []; for i in 0..n {{ for y in 0..side {{ for x in 0..side {{ v.push(((i * 7 + y * 3 + x) % 11) / 10.0); }} }} }} tensor(v).reshape([n, 1, side, side]) }}\nlet imgs = images({n}, {side});\n"
    )
}

#[test]
fn a_saved_grid_is_the_raw_grid_upscaled_by_nearest_neighbour_under_a_caption() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let body = pattern_script(6, 28)
        + r#"save_grid(imgs, "samples_step1500.png", 3);
             save_grid(imgs, "plain.png", 3, #{ scale: 1, caption: false });
             save_grid(imgs, "x2.png", 3, #{ scale: 2, caption: "my caption" });"#;
    run(tmp.path(), &out, &body).unwrap();
    let raw = raw_grid(&pattern(6, 28), 6, 28, 3);
    let (rw, rh) = raw.dimensions();
    assert_eq!((rw, rh), (3 * 30 + 2, 2 * 30 + 2));

    // 28-px images: upscaled 3× (to 84 px, at least 64).
    let k = 3u32;
    assert_eq!(auto_scale(28, rw as usize), k as usize);
    let pic = image::open(out.join("samples_step1500.png"))
        .unwrap()
        .to_luma8();
    let cap = CAPTION_HEIGHT as u32;
    assert_eq!(pic.dimensions(), (rw * k, rh * k + cap));
    for y in 0..rh * k {
        for x in 0..rw * k {
            assert_eq!(
                pic.get_pixel(x, y + cap).0[0],
                raw.get_pixel(x / k, y / k).0[0],
                "pixel ({x}, {y})"
            );
        }
    }
    // The caption band: white with dark text in its middle.
    let band: Vec<u8> = (0..cap)
        .flat_map(|y| (0..rw * k).map(move |x| (x, y)))
        .map(|(x, y)| pic.get_pixel(x, y).0[0])
        .collect();
    assert_eq!(pic.get_pixel(0, 0).0[0], 255);
    assert!(
        band.iter().filter(|&&v| v < 100).count() > 30,
        "no text drawn"
    );

    // scale 1, no caption: exactly the raw grid.
    let plain = image::open(out.join("plain.png")).unwrap().to_luma8();
    assert_eq!(plain, raw);
    // An explicit scale and caption; a different text gives a different band.
    let x2 = image::open(out.join("x2.png")).unwrap().to_luma8();
    assert_eq!(x2.dimensions(), (rw * 2, rh * 2 + cap));
    assert_eq!(
        x2.get_pixel(2 * 2 + 1, 2 * 2 + 1 + cap),
        raw.get_pixel(2, 2)
    );
}

#[test]
fn the_default_caption_is_the_step_or_epoch_in_the_name() {
    assert_eq!(default_caption("samples_step1500.png"), "step 1500");
    assert_eq!(default_caption("samples/step_5"), "step 5");
    assert_eq!(default_caption("samples_epoch03.png"), "epoch 3");
    assert_eq!(default_caption("lensed_step0.png"), "step 0");
    assert_eq!(default_caption("samples_final.png"), "samples final");
    assert_eq!(default_caption("real.png"), "real");
}

#[test]
fn a_growing_gif_holds_one_frame_per_grid_equal_to_the_png() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let body = pattern_script(4, 8)
        + r#"for step in [100, 200, 300] {
                 save_grid(imgs * (step / 300.0), `samples_step${step}.png`, 2, #{ gif: "samples.gif" });
             }"#;
    run(tmp.path(), &out, &body).unwrap();
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let file = std::fs::File::open(out.join("samples.gif")).unwrap();
    let mut dec = opts.read_info(file).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = dec.read_next_frame().unwrap() {
        frames.push((f.width, f.height, f.delay, f.buffer.to_vec()));
    }
    assert_eq!(frames.len(), 3);
    for (i, step) in [100, 200, 300].iter().enumerate() {
        let png = image::open(out.join(format!("samples_step{step}.png")))
            .unwrap()
            .to_luma8();
        let (w, h, delay, rgba) = &frames[i];
        assert_eq!((*w as u32, *h as u32), png.dimensions());
        assert!(*delay > 0);
        let grey: Vec<u8> = rgba.chunks_exact(4).map(|p| p[0]).collect();
        assert_eq!(
            grey,
            png.as_raw().to_vec(),
            "frame {i} differs from its PNG"
        );
    }

    // A grid of another size cannot join that GIF: an error naming both sizes; the GIF stays.
    let before = std::fs::read(out.join("samples.gif")).unwrap();
    let body = r#"save_grid(zeros([2, 1, 8, 8]), "odd.png", 2, #{ gif: "samples.gif" });"#;
    let out2 = out.clone();
    let e = run(tmp.path(), &out2, body).unwrap_err();
    assert!(e.contains("cannot add a") && e.contains("GIF of"), "{e}");
    assert_eq!(std::fs::read(out.join("samples.gif")).unwrap(), before);
}

#[test]
fn bad_picture_options_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (opts, want) in [
        ("#{ scale: 0 }", "`scale` must be an integer from 1 to 64"),
        ("#{ caption: 3 }", "`caption` must be a string"),
        ("#{ gif: 1 }", "`gif` must be a file name"),
        (
            "#{ zoom: 2 }",
            "expected range, scores, scale, caption or gif",
        ),
    ] {
        let body = format!("save_grid(zeros([2, 1, 4, 4]), \"g.png\", 2, {opts});");
        let e = run(tmp.path(), &tmp.path().join("r"), &body).unwrap_err();
        assert!(e.contains(want), "{opts}: {e}");
    }
}

#[test]
fn colour_grids_append_to_a_gif_with_their_own_palette() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let body = r#"seed(3);
        for i in 0..2 { save_grid(rand([4, 3, 8, 8]), `c${i}.png`, 2, #{ gif: "colour.gif" }); }"#;
    run(tmp.path(), &out, body).unwrap();
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts
        .read_info(std::fs::File::open(out.join("colour.gif")).unwrap())
        .unwrap();
    for i in 0..2 {
        let png = image::open(out.join(format!("c{i}.png")))
            .unwrap()
            .to_rgb8();
        let f = dec.read_next_frame().unwrap().expect("a frame");
        assert_eq!((f.width as u32, f.height as u32), png.dimensions());
        // Quantised to the frame's own 256 colours: close to the PNG on average.
        let err: f64 = f
            .buffer
            .chunks_exact(4)
            .zip(png.as_raw().chunks_exact(3))
            .map(|(g, p)| {
                (0..3)
                    .map(|c| (g[c] as f64 - p[c] as f64).abs())
                    .sum::<f64>()
            })
            .sum::<f64>()
            / (png.as_raw().len() as f64);
        assert!(err < 8.0, "frame {i}: mean error {err}");
    }
    assert!(dec.read_next_frame().unwrap().is_none());
}
