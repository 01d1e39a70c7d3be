//! Fast convolutions against candle's own, on the shapes of the papers' networks.
//! `cargo bench --bench conv`.

use candle_core::{Device, Tensor};
use ganscript::kernels::conv;
use std::time::Instant;

fn rand(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(ganscript::rng::normal_vec(n, 0.0, 1.0), shape, &Device::Cpu)
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
}

/// Best of 7 (after one warm-up call): this VM's neighbours make medians drift by 20%.
fn time(f: impl Fn()) -> f64 {
    f();
    let mut ts: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ts[0]
}

/// (name, x shape, w shape, stride, padding, transposed)
type Case = (&'static str, [usize; 4], [usize; 4], usize, usize, bool);

fn main() {
    let cases: &[Case] = &[
        (
            "magan G1 deconv 50->128 k7",
            [64, 50, 1, 1],
            [50, 128, 7, 7],
            1,
            0,
            true,
        ),
        (
            "magan G2 deconv 128->64 k4s2",
            [64, 128, 7, 7],
            [128, 64, 4, 4],
            2,
            1,
            true,
        ),
        (
            "magan G3 deconv 64->1 k4s2",
            [64, 64, 14, 14],
            [64, 1, 4, 4],
            2,
            1,
            true,
        ),
        (
            "dcgan32 G2 deconv 512->256",
            [64, 512, 4, 4],
            [512, 256, 4, 4],
            2,
            1,
            true,
        ),
        (
            "dcgan32 D1 conv 3->128",
            [64, 3, 32, 32],
            [128, 3, 4, 4],
            2,
            1,
            false,
        ),
        (
            "dcgan32 D2 conv 128->256",
            [64, 128, 16, 16],
            [256, 128, 4, 4],
            2,
            1,
            false,
        ),
        (
            "dcgan32 D3 conv 256->512",
            [64, 256, 8, 8],
            [512, 256, 4, 4],
            2,
            1,
            false,
        ),
        (
            "lens in conv 3->32 k3",
            [64, 3, 32, 32],
            [32, 3, 3, 3],
            1,
            1,
            false,
        ),
        (
            "lens out conv 32->3 k3",
            [64, 32, 32, 32],
            [3, 32, 3, 3],
            1,
            1,
            false,
        ),
        (
            "lens conv 32->32 k3",
            [64, 32, 32, 32],
            [32, 32, 3, 3],
            1,
            1,
            false,
        ),
    ];
    ganscript::autograd::ensure_double_backprop().unwrap();
    ganscript::memory::keep_freed_memory();
    // `cargo bench --bench conv -- D2` runs the cases whose name contains "D2".
    // `--ours` skips candle's kernels (for profiling ours alone).
    let ours_only = std::env::args().any(|a| a == "--ours");
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    println!(
        "{:32} {:>22} {:>22}",
        "", "forward (ours/candle)", "fwd+bwd (ours/candle)"
    );
    for (name, xs, ws, s, p, tr) in cases {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let x = candle_core::Var::from_tensor(&rand(xs)).unwrap();
        let w = candle_core::Var::from_tensor(&rand(ws)).unwrap();
        let (x, w) = (x.as_tensor(), w.as_tensor());
        let ours = |x: &Tensor, w: &Tensor| {
            if *tr {
                conv::conv_transpose2d(x, w, *s, *p, 0).unwrap()
            } else {
                conv::conv2d(x, w, *s, *p).unwrap()
            }
        };
        let theirs = |x: &Tensor, w: &Tensor| {
            if *tr {
                x.conv_transpose2d(w, *p, 0, *s, 1).unwrap()
            } else {
                x.conv2d(w, *p, *s, 1, 1).unwrap()
            }
        };
        if std::env::args().any(|a| a == "--fwd-loop") {
            // Forward passes only, for a profiler.
            let t = Instant::now();
            for _ in 0..50 {
                drop(ours(x, w));
            }
            println!(
                "{name}: {:.2} ms per forward",
                t.elapsed().as_secs_f64() * 20.0
            );
            continue;
        }
        let f1 = time(|| drop(ours(x, w)));
        let skip = |t: f64, f: &dyn Fn()| if ours_only { t } else { time(f) };
        let f2 = skip(f64::NAN, &|| drop(theirs(x, w)));
        let b1 = time(|| {
            drop(
                ours(x, w)
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
        });
        let b2 = skip(f64::NAN, &|| {
            drop(
                theirs(x, w)
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap(),
            )
        });
        // Each adjoint alone: the backward pass of a convolution whose other argument is a
        // constant computes only the one gradient.
        let xc = x.detach();
        let wc = w.detach();
        let bx = time(|| drop(ours(x, &wc).sum_all().unwrap().backward().unwrap()));
        let bw = time(|| drop(ours(&xc, w).sum_all().unwrap().backward().unwrap()));
        println!(
            "{name:32} {f1:9.2} / {f2:9.2} ms {b1:9.2} / {b2:9.2} ms   dx {:7.2} dw {:7.2} ms",
            bx - f1,
            bw - f1
        );
    }
}
