//! A corpus of bad scripts and bad data files, run through the binary in parallel: each must
//! end in a clear error at the script's line (or the data file's name), or in a correct result
//! — never a panic, an abort, a signal death or a hang.
//!
//! The scripts cover every op family (creation, arithmetic, shapes, reductions, conversions,
//! autograd, nets and layers, optimizers, losses, penalties, metrics, schedules, MAGAN margins,
//! data sets, run outputs, checkpoints, rhai's own values) with huge, negative, NaN, empty,
//! wrong-dtype and wrong-shape arguments. The data files (generated here, nothing big is
//! committed) are truncated, decompression bombs, wrong magic numbers, giant headers, corrupt
//! archives and images, unreadable files. The fuzz targets' regression cases are at the end.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a case must end in.
#[derive(Clone, Debug)]
enum Expect {
    /// Exit code 1, stderr names the script's line (`NAME.rhai:`) and contains the text.
    Error(&'static str),
    /// Exit code 0 and stdout contains the text.
    Output(&'static str),
}
use Expect::{Error, Output};

/// A case built at run time (data files): its expectation may name a generated file.
struct Case {
    name: String,
    script: String,
    args: Vec<String>,
    expect: Expectation,
}

enum Expectation {
    Error(String),
    Output(String),
    /// Exit code 1 without a script line (command-line input such as `--resume DIR`); stderr
    /// contains the text.
    Plain(String),
    /// Either a correct run printing the text, or an error containing the other text (for
    /// checks whose outcome depends on the machine, e.g. file permissions as root).
    Either(String, String),
}

/// How long one case may run before it counts as a hang.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Never in any output: a crash reported as such.
const CRASH_MARKS: &[&str] = &[
    "internal error",
    "panicked",
    "memory allocation of",
    "has overflowed its stack",
    "fatal runtime error",
    "RUST_BACKTRACE",
];

#[rustfmt::skip]
const SCRIPTS: &[(&str, &str, &[&str], Expect)] = &[
    ("zeros_huge", r#"let x = zeros([9223372036854775807, 9223372036854775807]); print(x.numel());"#, &[], Error("shape: the shape [9223372036854775807,")),
    ("zeros_big", r#"let x = zeros([100000, 100000, 100]);"#, &[], Error("zeros: a tensor of shape [100000, 100000, 100]")),
    ("ones_big", r#"let x = ones([1000000, 1000000]);"#, &[], Error("ones: a tensor of shape [1000000, 1000000]")),
    ("full_big", r#"let x = full([1000000, 1000000], 1.0);"#, &[], Error("full: a tensor of shape [1000000, 1000000]")),
    ("full_big_int", r#"let x = full([1000000, 1000000], 1);"#, &[], Error("full: a tensor of shape [1000000, 1000000]")),
    ("randn_big", r#"let x = randn([1000000, 1000000]);"#, &[], Error("randn: a tensor of shape [1000000, 1000000]")),
    ("randn_big2", r#"let x = randn([100000, 100000], 0.0, 1.0);"#, &[], Error("randn: a tensor of shape [100000, 100000] (f32)")),
    ("rand_big", r#"let x = rand([1000000, 1000000]);"#, &[], Error("rand: a tensor of shape [1000000, 1000000]")),
    ("arange_big", r#"let x = arange(100000000000);"#, &[], Error("arange: a tensor of shape [100000000000] (f32)")),
    ("arange2_big", r#"let x = arange(0, 100000000000);"#, &[], Error("arange: a tensor of shape [100000000000] (f32)")),
    ("arange3_big", r#"let x = arange(0.0, 1e12, 1.0);"#, &[], Error("arange: a tensor of shape [1000000000000] (f32)")),
    ("arange3_nan", r#"let x = arange(0.0, 1.0, 0.0/0.0); print(x);"#, &[], Error("arange: step must be a finite number, got NaN")),
    ("arange3_inf", r#"let x = arange(0.0, 1.0/0.0, 1.0); print(x);"#, &[], Error("arange: end must be a finite number, got inf")),
    ("linspace_big", r#"let x = linspace(0.0, 1.0, 100000000000);"#, &[], Error("linspace: a tensor of shape [100000000000]")),
    ("linspace_neg", r#"let x = linspace(0.0, 1.0, -5); print(x);"#, &[], Error("linspace: the number of values must be >= 0,")),
    ("linear_big", r#"let l = linear(1000000, 1000000);"#, &[], Error("linear: a parameter of shape [1000000, 1000000]")),
    ("conv_big", r#"let c = conv2d(100000, 100000, 100, 1, 0);"#, &[], Error("conv2d: a parameter of shape [100000, 100000,")),
    ("deconv_big", r#"let c = conv_transpose2d(100000, 100000, 100, 1, 0, 0);"#, &[], Error("conv_transpose2d: a parameter of shape [100000,")),
    ("bn_big", r#"let b = batch_norm(100000000000);"#, &[], Error("batch_norm: a parameter of shape [100000000000]")),
    ("ln_big", r#"let b = layer_norm(100000000000);"#, &[], Error("layer_norm: a parameter of shape [100000000000]")),
    ("perm_big", r#"let p = permutation(10000000000);"#, &[], Error("permutation(10000000000): more items than an")),
    ("perm_neg", r#"let p = permutation(-3); print(p);"#, &[], Error("permutation(n): n must be >= 0, got -3")),
    ("pad_big", r#"let a = []; a.pad(10000000000, 0);"#, &[], Error("Size of array/BLOB too large")),
    ("str_double", r#"let s = "x"; for i in 0..64 { s += s; }"#, &[], Error("Length of string too large")),
    ("ring8_big", r#"let d = ring8(10000000000);"#, &[], Error("10000000000 mixture samples needs")),
    ("grid25_big", r#"let d = grid25(10000000000);"#, &[], Error("10000000000 mixture samples needs")),
    ("mix3d_big", r#"let d = roth_mixture3d(10000000000);"#, &[], Error("10000000000 mixture samples needs")),
    ("ring8_neg", r#"let d = ring8(-1);"#, &[], Error("the number of samples must be >= 0, got -1")),
    ("reshape_overflow", r#"let x = zeros([2]); let y = x.reshape([9223372036854775807, 9223372036854775807, 2]); print(y);"#, &[], Error("reshape: the shape [9223372036854775807,")),
    ("broadcast_big", r#"let x = zeros([1]); let y = x.broadcast_as([100000, 100000]); print(y.sum());"#, &[], Error("broadcast_as: a tensor of shape [100000,")),
    ("broadcast_overflow", r#"let x = zeros([1]); let y = x.broadcast_as([9223372036854775807, 3]);"#, &[], Error("shape: the shape [9223372036854775807, 3] has")),
    ("binop_bcast_big", r#"let a = zeros([100000, 1]); let b = zeros([1, 100000]); let c = a + b;"#, &[], Error("+: a tensor of shape [100000, 100000] (f32)")),
    ("matmul_big", r#"let a = zeros([100000, 1]); let b = zeros([1, 100000]); let c = a.matmul(b);"#, &[], Error("matmul: a tensor of shape [100000, 100000]")),
    ("idx_neg", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select([-1], 0));"#, &[], Error("index_select: index -1 is out of range for")),
    ("idx_2_32", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select([4294967296], 0));"#, &[], Error("index_select: index 4294967296 is out of range")),
    ("idx_2_40", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select([1099511627776], 0));"#, &[], Error("index_select: index 1099511627776 is out of")),
    ("idx_float", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select(tensor([1.7]), 0));"#, &[], Error("index_select: index 1.7000000476837158 is out")),
    ("idx_oob", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select([3], 0));"#, &[], Error("index_select: index 3 is out of range for")),
    ("idx_oob_t", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select(tensor([7]).to("i64"), 0));"#, &[], Error("index_select: index 7 is out of range for")),
    ("idx_neg_t", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select(tensor([-1]).to("i64"), 0));"#, &[], Error("index_select: index -1 is out of range for")),
    ("idx_bad_dim", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select([0], 5));"#, &[], Error("dimension 5 is out of range for a tensor of")),
    ("idx_empty", r#"let x = tensor([[1.0], [2.0], [3.0]]); print(x.index_select([], 0));"#, &[], Output("Tensor[0, 1] f32 cpu")),
    ("rand_rev", r#"print(rand([3], 1.0, 0.0));"#, &[], Error("rand: the range [1, 0) is empty: needs lo < hi")),
    ("rand_nan", r#"print(rand([3], 0.0/0.0, 1.0));"#, &[], Error("rand: the lower bound must be a finite number,")),
    ("randn_negstd", r#"print(randn([3], 0.0, -1.0));"#, &[], Error("randn: the standard deviation must be >= 0, got")),
    ("randn_nanstd", r#"print(randn([3], 0.0, 0.0/0.0));"#, &[], Error("randn: the standard deviation must be a finite")),
    ("sgd_negmom", r#"let w = variable(ones([2])); let o = sgd(w, 0.1, -0.5); o.step((w*w).sum()); print(w);"#, &[], Error("sgd: momentum must be a finite number >= 0, got")),
    ("sgd_negmom_big", r#"let w = variable(ones([2])); let o = sgd(w, 0.1, 2.0);"#, &[], Output("")),
    ("sgd_neg_lr", r#"let w = variable(ones([2])); let o = sgd(w, -0.1);"#, &[], Error("sgd: learning rate must be >= 0, got -0.1")),
    ("adam_nan_eps", r#"let w = variable(ones([2])); let o = adam(w, 0.1, 0.5, 0.9, #{eps: -1.0});"#, &[], Error("adam: eps must be a finite number >= 0, got -1")),
    ("adam_neg_wd", r#"let w = variable(ones([2])); let o = adam(w, 0.1, 0.5, 0.9, #{weight_decay: -1.0});"#, &[], Error("adam: weight_decay must be a finite number >=")),
    ("rms_neg_eps", r#"let w = variable(ones([2])); let o = rmsprop(w, 0.1, 0.9, -1.0);"#, &[], Error("rmsprop: eps must be a finite number >= 0, got")),
    ("lr_set_nan", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.lr = 0.0/0.0; o.step((w*w).sum()); print(w);"#, &[], Error("sgd: the learning rate must be a finite number")),
    ("lr_set_neg", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.lr = -1.0;"#, &[], Error("sgd: the learning rate must be a finite number")),
    ("clamp_rev", r#"print(ones([3]).clamp(1.0, -1.0));"#, &[], Error("clamp: needs bounds lo <= hi, got lo = 1, hi =")),
    ("clamp_rev_int", r#"print(ones([3]).clamp(1, -1));"#, &[], Error("clamp: needs bounds lo <= hi, got lo = 1, hi =")),
    ("clamp_nan", r#"print(ones([3]).clamp(0.0/0.0, 1.0));"#, &[], Error("clamp: needs bounds lo <= hi, got lo = NaN, hi")),
    ("rand_int0", r#"print(rand_int(0));"#, &[], Error("rand_int(n): n must be >= 1, got 0")),
    ("rand_int_neg", r#"print(rand_int(-5));"#, &[], Error("rand_int(n): n must be >= 1, got -5")),
    ("dtype_u8_randn", r#"default_dtype("u8"); print(randn([3]));"#, &[], Error("default_dtype(\"u8\"): the default dtype must be")),
    ("dtype_i64_randn", r#"default_dtype("i64"); print(randn([3]));"#, &[], Error("default_dtype(\"i64\"): the default dtype must be")),
    ("dtype_u32_rand", r#"default_dtype("u32"); print(rand([3]));"#, &[], Error("default_dtype(\"u32\"): the default dtype must be")),
    ("dtype_f16", r#"default_dtype("f16"); print(randn([3]).log());"#, &[], Output("Tensor[3] f16 cpu")),
    ("dtype_bf16", r#"default_dtype("bf16"); let l = linear(3, 2); print(l.forward(randn([2, 3])));"#, &[], Output("Tensor[2, 2] bf16 cpu")),
    ("dtype_u8_linear", r#"default_dtype("u8"); let l = linear(3, 2); print(l.forward(ones([2, 3])));"#, &[], Error("default_dtype(\"u8\"): the default dtype must be")),
    ("u8_log", r#"let x = ones([3]).to("u8"); print(x.log());"#, &[], Error("log: needs a float tensor, got a u8 tensor of")),
    ("u8_sqrt", r#"let x = ones([3]).to("u8"); print(x.sqrt());"#, &[], Error("sqrt: needs a float tensor, got a u8 tensor of")),
    ("u8_exp", r#"let x = ones([3]).to("u8"); print(x.exp());"#, &[], Error("exp: needs a float tensor, got a u8 tensor of")),
    ("u8_sin", r#"let x = ones([3]).to("u8"); print(x.sin());"#, &[], Error("sin: needs a float tensor, got a u8 tensor of")),
    ("u8_cos", r#"let x = ones([3]).to("u8"); print(x.cos());"#, &[], Error("cos: needs a float tensor, got a u8 tensor of")),
    ("u8_tanh", r#"let x = ones([3]).to("u8"); print(x.tanh());"#, &[], Error("tanh: needs a float tensor, got a u8 tensor of")),
    ("u8_recip", r#"let x = ones([3]).to("u8"); print(x.recip());"#, &[], Error("recip: needs a float tensor, got a u8 tensor of")),
    ("u8_relu", r#"let x = ones([3]).to("u8"); print(x.relu());"#, &[], Error("relu: needs a float tensor, got a u8 tensor of")),
    ("u8_sigmoid", r#"let x = ones([3]).to("u8"); print(x.sigmoid());"#, &[], Error("sigmoid: needs a float tensor, got a u8 tensor")),
    ("u8_softplus", r#"let x = ones([3]).to("u8"); print(x.softplus());"#, &[], Error("softplus: needs a float tensor, got a u8 tensor")),
    ("u8_leaky", r#"let x = ones([3]).to("u8"); print(x.leaky_relu(0.2));"#, &[], Error("leaky_relu: needs a float tensor, got a u8")),
    ("u8_l2", r#"let x = ones([3, 2]).to("u8"); print(x.l2());"#, &[], Error("l2: needs a float tensor, got a u8 tensor of")),
    ("u8_l1", r#"let x = ones([3, 2]).to("u8"); print(x.l1());"#, &[], Error("l1: needs a float tensor, got a u8 tensor of")),
    ("u8_linf", r#"let x = ones([3, 2]).to("u8"); print(x.linf());"#, &[], Error("linf: needs a float tensor, got a u8 tensor of")),
    ("u8_sq_l2", r#"let x = ones([3, 2]).to("u8"); print(x.sq_l2());"#, &[], Error("sq_l2: needs a float tensor, got a u8 tensor of")),
    ("u8_sqr", r#"let x = ones([3]).to("u8"); print(x.sqr());"#, &[], Error("sqr: needs a float tensor, got a u8 tensor of")),
    ("u8_abs", r#"let x = ones([3]).to("u8"); print(x.abs());"#, &[], Error("abs: needs a float tensor, got a u8 tensor of")),
    ("u8_neg", r#"let x = ones([3]).to("u8"); print(-x);"#, &[], Error("neg: needs a float tensor, got a u8 tensor of")),
    ("u8_pow", r#"let x = ones([3]).to("u8"); print(x.pow(2.5));"#, &[], Error("pow: needs a float tensor, got a u8 tensor of")),
    ("u8_softmax", r#"let x = ones([3]).to("u8"); print(x.softmax());"#, &[], Error("softmax: log_softmax: needs a float tensor, got")),
    ("u8_logsoftmax", r#"let x = ones([3]).to("u8"); print(x.log_softmax());"#, &[], Error("log_softmax: log_softmax: needs a float tensor,")),
    ("u8_mean", r#"let x = ones([3]).to("u8"); print(x.mean());"#, &[], Error("mean: needs a float tensor, got a u8 tensor of")),
    ("u8_std", r#"let x = ones([3]).to("u8"); print(x.std());"#, &[], Error("std: needs a float tensor, got a u8 tensor of")),
    ("u8_sum", r#"let x = ones([300]).to("u8"); print(x.sum());"#, &[], Output("i64 cpu\n300")),
    ("u8_div", r#"let x = ones([3]).to("u8"); print(x / 2.0);"#, &[], Error("/: u8 tensor operands would give truncated u8")),
    ("u8_add_f", r#"let x = ones([3]).to("u8"); print(x + 0.5);"#, &[], Error("+: u8 tensor operands would give truncated u8")),
    ("u8_add_t", r#"let x = ones([3]).to("u8"); print(x + ones([3]));"#, &[], Error("+: u8 tensor operands would give truncated u8")),
    ("u8_cmp", r#"let x = ones([3]).to("u8"); print(x > 0.5);"#, &[], Output("Tensor[3] f32 cpu")),
    ("u8_bn", r#"let x = ones([4, 3]).to("u8"); let b = batch_norm(3); print(b.forward(x));"#, &[], Error("forward: forward: needs a float tensor, got a")),
    ("u8_ln", r#"let x = ones([4, 3]).to("u8"); let b = layer_norm(3); print(b.forward(x));"#, &[], Error("forward: forward: needs a float tensor, got a")),
    ("u8_linear", r#"let x = ones([4, 3]).to("u8"); let b = linear(3, 2); print(b.forward(x));"#, &[], Error("forward: forward: needs a float tensor, got a")),
    ("u8_conv", r#"let x = ones([1, 1, 4, 4]).to("u8"); let b = conv2d(1, 2, 3, 1, 0); print(b.forward(x));"#, &[], Error("forward: forward: needs a float tensor, got a")),
    ("u8_energy", r#"let x = ones([4, 3]).to("u8"); print(energy(x, x));"#, &[], Error("energy: needs a float tensor, got a u8 tensor")),
    ("u8_ce", r#"let x = ones([4, 3]).to("u8"); print(cross_entropy(x, [0, 1, 2, 0]));"#, &[], Error("cross_entropy: log_softmax: needs a float")),
    ("i64_ce_labels", r#"let x = randn([4, 3]); print(cross_entropy(x, tensor([0, 1, 2, 0]).to("i64")));"#, &[], Output("Tensor[] f32 cpu")),
    ("ce_label_oob", r#"let x = randn([4, 3]); print(cross_entropy(x, [0, 1, 7, 0]));"#, &[], Error("cross_entropy: labels must be integers in 0..3,")),
    ("ce_label_neg", r#"let x = randn([4, 3]); print(cross_entropy(x, [0, 1, -1, 0]));"#, &[], Error("cross_entropy: labels must be integers in 0..3,")),
    ("ce_label_float", r#"let x = randn([4, 3]); print(cross_entropy(x, tensor([0.5, 1.0, 2.0, 0.0])));"#, &[], Error("cross_entropy: labels must be integers in 0..3,")),
    ("ce_shape", r#"let x = randn([4, 3]); print(cross_entropy(x, [0, 1]));"#, &[], Error("cross_entropy: expected 4 labels (shape [4]),")),
    ("i64_log", r#"let x = ones([3]).to("i64"); print(x.log());"#, &[], Error("log: needs a float tensor, got a i64 tensor of")),
    ("i64_sqrt", r#"let x = ones([3]).to("i64"); print(x.sqrt());"#, &[], Error("sqrt: needs a float tensor, got a i64 tensor of")),
    ("i64_softplus", r#"let x = ones([3]).to("i64"); print(x.softplus());"#, &[], Error("softplus: needs a float tensor, got a i64")),
    ("i64_leaky", r#"let x = ones([3]).to("i64"); print(x.leaky_relu(0.2));"#, &[], Error("leaky_relu: needs a float tensor, got a i64")),
    ("i64_l2", r#"let x = ones([3, 2]).to("i64"); print(x.l2());"#, &[], Error("l2: needs a float tensor, got a i64 tensor of")),
    ("i64_bn", r#"let x = ones([4, 3]).to("i64"); let b = batch_norm(3); print(b.forward(x));"#, &[], Error("forward: forward: needs a float tensor, got a")),
    ("i64_energy", r#"let x = ones([4, 3]).to("i64"); print(energy(x, x));"#, &[], Error("energy: needs a float tensor, got a i64 tensor")),
    ("u32_log", r#"let x = ones([3]).to("u32"); print(x.log());"#, &[], Error("log: needs a float tensor, got a u32 tensor of")),
    ("u32_exp", r#"let x = ones([3]).to("u32"); print(x.exp());"#, &[], Error("exp: needs a float tensor, got a u32 tensor of")),
    ("i64_grad", r#"let x = variable(ones([3]).to("i64")); print(grad(x.sum(), x));"#, &[], Output("Tensor[3] f32 cpu")),
    ("f16_grad", r#"let x = variable(ones([3]).to("f16")); print(grad((x*x).sum(), x));"#, &[], Output("Tensor[3] f16 cpu")),
    ("u8_variable", r#"let x = variable(ones([3]).to("u8")); let o = sgd(x, 0.1);"#, &[], Output("")),
    ("u8_where", r#"let x = ones([3]).to("u8"); print(where(x, x, x));"#, &[], Output("Tensor[3] u8 cpu")),
    ("u8_maximum", r#"let x = ones([3]).to("u8"); print(x.maximum(0.5));"#, &[], Error("maximum: u8 tensor operands would give")),
    ("u8_argmax", r#"let x = ones([3]).to("u8"); print(x.argmax());"#, &[], Output("0")),
    ("u8_matmul", r#"let x = ones([3, 3]).to("u8"); print(x.matmul(x));"#, &[], Error("matmul: unsupported dtype U8 for op matmul")),
    ("u8_to_array", r#"let x = ones([3]).to("u8"); print(x.to_array());"#, &[], Output("[1, 1, 1]")),
    ("u8_item", r#"let x = ones([1]).to("u8"); print(x.item());"#, &[], Output("1.0")),
    ("u8_isnan", r#"let x = ones([1]).to("u8"); print(x.is_nan());"#, &[], Output("false")),
    ("u8_gp", r#"let D = linear(3, 1); let x = ones([2, 3]).to("u8"); print(gradient_penalty(D, x, x));"#, &[], Error("gradient_penalty: needs a float tensor, got a")),
    ("u8_r1", r#"let D = linear(3, 1); let x = ones([2, 3]).to("u8"); print(r1(D, x));"#, &[], Output("Tensor[] f32 cpu")),
    ("u8_save_grid", r#"let x = ones([4, 1, 8, 8]).to("u8"); save_grid(x, "g.png", 2);"#, &[], Output("")),
    ("u8_frechet", r#"let x = ones([4, 4]).to("u8"); print(frechet_distance(x, x, x, x));"#, &[], Error("frechet_distance: expected means [D] and")),
    ("u8_mode_stats", r#"let x = ones([4, 2]).to("u8"); print(mode_stats(x, x, 0.1));"#, &[], Output("#{\"assigned\": [4, 0, 0, 0], \"counts\": [4")),
    ("frechet_negcov", r#"let m = zeros([2]); let c = tensor([[-1.0, 0.0], [0.0, -1.0]]); print(frechet_distance(m, c, m, c));"#, &[], Error("frechet_distance: the first covariance is not")),
    ("frechet_nan", r#"let m = zeros([2]); let c = tensor([[0.0/0.0, 0.0], [0.0, 1.0]]); print(frechet_distance(m, c, m, c));"#, &[], Error("frechet_distance: the statistics contain NaN or")),
    ("frechet_shape", r#"let m = zeros([2]); let c = zeros([3, 3]); print(frechet_distance(m, c, m, c));"#, &[], Error("frechet_distance: expected means [D] and")),
    ("frechet_asym", r#"let m = zeros([2]); let c = tensor([[1.0, 5.0], [0.0, 1.0]]); print(frechet_distance(m, c, m, c));"#, &[], Error("frechet_distance: the first covariance is not")),
    ("ebgan_nan_margin", r#"print(ebgan_d_loss(ones([3]), ones([3]), 0.0/0.0));"#, &[], Error("ebgan_d_loss: the margin must be a finite")),
    ("ebgan_neg_margin", r#"print(ebgan_d_loss(ones([3]), ones([3]), -1.0));"#, &[], Error("ebgan_d_loss: the margin must be a finite")),
    ("ebgan_inf_margin", r#"print(ebgan_d_loss(ones([3]), ones([3]), 1.0/0.0));"#, &[], Error("ebgan_d_loss: the margin must be a finite")),
    ("conv_stride0", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), 0, 0));"#, &[], Error("conv2d: the stride must be >= 1, got 0")),
    ("conv_stride_neg", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), -1, 0));"#, &[], Error("conv2d: the stride must be >= 1, got -1")),
    ("conv_pad_huge", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), 1, 9223372036854775807));"#, &[], Error("conv2d: conv2d: padding 9223372036854775807 is")),
    ("conv_pad_big", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), 1, 100000));"#, &[], Error("conv2d: conv2d: an output of shape [1, 1,")),
    ("conv_stride_huge", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), 9223372036854775807, 0));"#, &[], Output("Tensor[1, 1, 1, 1] f32 cpu\n[[[[9.]]]]")),
    ("convt_stride_huge", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv_transpose2d(x, w, (), 9223372036854775807, 0, 0));"#, &[], Error("conv_transpose2d: conv_transpose2d: stride")),
    ("convt_stride_big", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv_transpose2d(x, w, (), 100000000, 0, 0));"#, &[], Error("conv_transpose2d: conv_transpose2d: an output")),
    ("convt_stride_big2", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv_transpose2d(x, w, (), 4611686018427387904, 0, 0));"#, &[], Error("conv_transpose2d: conv_transpose2d: an output")),
    ("convt_zero_in", r#"let x = ones([1, 1, 0, 4]); let w = ones([1, 1, 3, 3]); print(conv_transpose2d(x, w, (), 1, 0, 0));"#, &[], Error("conv_transpose2d: conv_transpose2d: the input")),
    ("conv_zero_in", r#"let x = ones([1, 1, 0, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), 1, 0));"#, &[], Error("conv2d: conv2d: a 3x3 kernel does not fit the")),
    ("conv_zero_batch", r#"let x = ones([0, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv2d(x, w, (), 1, 0));"#, &[], Output("Tensor[0, 1, 2, 2] f32 cpu")),
    ("conv_zero_k", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 0, 0]); print(conv2d(x, w, (), 1, 0));"#, &[], Error("conv2d: conv2d: the kernel must be at least")),
    ("conv_zero_out", r#"let x = ones([1, 1, 4, 4]); let w = ones([0, 1, 3, 3]); print(conv2d(x, w, (), 1, 0));"#, &[], Output("Tensor[1, 0, 2, 2] f32 cpu")),
    ("convt_outpad", r#"let x = ones([1, 1, 4, 4]); let w = ones([1, 1, 3, 3]); print(conv_transpose2d(x, w, (), 2, 0, 5));"#, &[], Error("conv_transpose2d: conv_transpose2d: output")),
    ("layer_convt_big_stride", r#"let c = conv_transpose2d(1, 1, 3, 1000000000, 0, 0); print(c.forward(ones([1, 1, 4, 4])));"#, &[], Error("forward: conv_transpose2d: an output of shape")),
    ("layer_conv_zero_in", r#"let c = conv2d(1, 1, 3, 1, 0); print(c.forward(ones([1, 1, 0, 0])));"#, &[], Error("forward: conv2d(1, 1, k=3, s=1, p=0): input [1,")),
    ("deep_seq", r#"let n = relu(); for i in 0..7000 { n = sequential([n]); } print(n.forward(ones([2])));"#, &[], Error("sequential: nets may nest at most 256 levels")),
    ("deep_seq_ckpt", r#"let n = relu(); for i in 0..7000 { n = sequential([n]); } track("n", n); save_checkpoint(#{});"#, &[], Error("sequential: nets may nest at most 256 levels")),
    ("deep_seq_summary", r#"let n = relu(); for i in 0..7000 { n = sequential([n]); } print(n);"#, &[], Error("sequential: nets may nest at most 256 levels")),
    ("deep_res", r#"let n = relu(); for i in 0..7000 { n = residual(n); } print(n.forward(ones([2])));"#, &[], Error("residual: nets may nest at most 256 levels")),
    ("deep_seq_params", r#"let n = linear(2,2); for i in 0..7000 { n = sequential([n]); } print(n.params().len());"#, &[], Error("sequential: nets may nest at most 256 levels")),
    ("deep_seq_copy", r#"let n = linear(2,2); for i in 0..7000 { n = sequential([n]); } let m = n.copy();"#, &[], Error("sequential: nets may nest at most 256 levels")),
    ("deep_seq_save", r#"let n = linear(2,2); for i in 0..7000 { n = sequential([n]); } n.save("n.safetensors");"#, &[], Error("sequential: nets may nest at most 256 levels")),
    ("recursion", r#"fn f(n) { f(n + 1) } f(0);"#, &[], Error("Stack overflow")),
    ("tensor_ragged", r#"print(tensor([[1, 2], [3]]));"#, &[], Error("ragged array: rows of length 2 and 1 at depth 1")),
    ("tensor_empty", r#"print(tensor([]));"#, &[], Output("Tensor[0] f32 cpu")),
    ("tensor_string", r#"print(tensor(["a"]));"#, &[], Error("tensor(...) takes numbers or arrays of numbers,")),
    ("tensor_mixed", r#"print(tensor([1, [2]]));"#, &[], Output("Tensor[2, 1] f32 cpu")),
    ("reshape_bad", r#"print(zeros([6]).reshape([4, -1]));"#, &[], Error("reshape: cannot reshape [6] (6 elements) into")),
    ("reshape_two_holes", r#"print(zeros([6]).reshape([-1, -1]));"#, &[], Error("reshape: only one dimension can be -1")),
    ("reshape_zero_hole", r#"print(zeros([0]).reshape([0, -1]));"#, &[], Error("reshape: cannot reshape [0] (0 elements) into")),
    ("narrow_oob", r#"print(zeros([6]).narrow(0, 4, 5));"#, &[], Error("narrow: narrow invalid args start + len >")),
    ("narrow_huge", r#"print(zeros([6]).narrow(0, 9223372036854775807, 1));"#, &[], Error("narrow: narrow invalid args start > dim_len:")),
    ("slice_rev", r#"print(zeros([6]).slice(0, 4, 2));"#, &[], Error("slice: empty range 4..2 of a dimension of size 6")),
    ("slice_huge", r#"print(zeros([6]).slice(0, -9223372036854775808, 9223372036854775807));"#, &[], Output("Tensor[6] f32 cpu")),
    ("dim_huge", r#"print(zeros([6]).dim(-9223372036854775808));"#, &[], Error("dimension -9223372036854775808 is out of range")),
    ("transpose_bad", r#"print(zeros([6]).transpose(0, 5));"#, &[], Error("dimension 5 is out of range for a tensor of")),
    ("permute_dup", r#"print(zeros([2, 3]).permute([0, 0]));"#, &[], Error("permute: permute: duplicate dim index [0, 0]")),
    ("permute_short", r#"print(zeros([2, 3]).permute([0]));"#, &[], Error("permute: dimension mismatch in permute, tensor")),
    ("unsqueeze_huge", r#"print(zeros([6]).unsqueeze(-9223372036854775808));"#, &[], Error("unsqueeze: dimension out of range for rank 1")),
    ("squeeze_bad", r#"print(zeros([6]).squeeze(0));"#, &[], Output("Tensor[6] f32 cpu")),
    ("cat_empty", r#"print(cat([], 0));"#, &[], Error("cat: needs at least one tensor")),
    ("cat_mismatch", r#"print(cat([zeros([2, 3]), zeros([2, 4])], 0));"#, &[], Error("cat: shape mismatch in cat for dim 1, shape for")),
    ("cat_ranks", r#"print(cat([zeros([2, 3]), zeros([2])], 0));"#, &[], Error("cat: unexpected rank, expected: 2, got: 1 ([2])")),
    ("cat_dtype", r#"print(cat([zeros([2]), zeros([2]).to("f64")], 0));"#, &[], Error("cat: dtype mismatch in cat, lhs: F32, rhs: F64")),
    ("stack_mismatch", r#"print(stack([zeros([2, 3]), zeros([2, 4])], 0));"#, &[], Error("stack: shape mismatch in cat for dim 2, shape")),
    ("stack_huge_dim", r#"print(stack([zeros([2])], -9223372036854775808));"#, &[], Error("stack: dimension out of range")),
    ("index_scalar", r#"print(tensor(1.0)[0]);"#, &[], Error("cannot index a scalar tensor")),
    ("index_oob", r#"print(zeros([3])[5]);"#, &[], Error("index 5 is out of range for dimension 0 of size")),
    ("index_minint", r#"print(zeros([3])[-9223372036854775808]);"#, &[], Error("index -9223372036854775808 is out of range for")),
    ("sum_dim_bad", r#"print(zeros([3]).sum(7));"#, &[], Error("dimension 7 is out of range for a tensor of")),
    ("sum_dim_arr_bad", r#"print(zeros([3]).sum([0, 9]));"#, &[], Error("dimension 9 is out of range for a tensor of")),
    ("mean_empty", r#"print(zeros([0]).mean());"#, &[], Output("Tensor[] f32 cpu")),
    ("max_empty", r#"print(zeros([0]).max());"#, &[], Error("max: empty tensor for reduce")),
    ("min_empty", r#"print(zeros([0]).min());"#, &[], Error("min: empty tensor for reduce")),
    ("argmax_empty", r#"print(zeros([0]).argmax());"#, &[], Error("argmax: empty tensor for reduce")),
    ("argmax_dim_empty", r#"print(zeros([0, 3]).argmax(0));"#, &[], Error("argmax: empty tensor for reduce")),
    ("item_empty", r#"print(zeros([0]).item());"#, &[], Error("item() needs a tensor with one element, this")),
    ("item_many", r#"print(zeros([2]).item());"#, &[], Error("item() needs a tensor with one element, this")),
    ("std_empty", r#"print(zeros([0]).std());"#, &[], Output("Tensor[] f32 cpu")),
    ("softmax_empty", r#"print(zeros([0]).softmax());"#, &[], Error("softmax: empty tensor for reduce")),
    ("softmax_scalar", r#"print(tensor(1.0).softmax());"#, &[], Error("softmax: log_softmax: needs at least one")),
    ("logsoftmax_scalar", r#"print(tensor(1.0).log_softmax());"#, &[], Error("log_softmax: log_softmax: needs at least one")),
    ("l2_scalar", r#"print(tensor(1.0).l2());"#, &[], Output("Tensor[1] f32 cpu")),
    ("l2_empty", r#"print(zeros([0, 3]).l2());"#, &[], Output("Tensor[0] f32 cpu")),
    ("linf_empty", r#"print(zeros([2, 0]).linf());"#, &[], Error("linf: empty tensor for reduce")),
    ("sq_l2_scalar", r#"print(tensor(1.0).sq_l2());"#, &[], Output("Tensor[1] f32 cpu")),
    ("matmul_rank1", r#"print(zeros([3]).matmul(zeros([3])));"#, &[], Error("matmul: only 2d matrixes are supported [3] [3]")),
    ("matmul_scalar", r#"print(tensor(1.0).matmul(tensor(1.0)));"#, &[], Error("matmul: only 2d matrixes are supported [] []")),
    ("matmul_mismatch", r#"print(zeros([2, 3]).matmul(zeros([2, 3])));"#, &[], Error("matmul: shape mismatch in matmul, lhs: [2, 3],")),
    ("matmul_batch", r#"print(zeros([2, 2, 3]).matmul(zeros([3, 3, 4])));"#, &[], Error("matmul: shape mismatch in broadcast_matmul,")),
    ("matmul_dtype", r#"print(zeros([2, 3]).matmul(zeros([3, 2]).to("f64")));"#, &[], Error("matmul: dtype mismatch in matmul, lhs: F32,")),
    ("add_dtype", r#"print(zeros([2]) + zeros([2]).to("f64"));"#, &[], Error("+: dtype mismatch in add, lhs: F32, rhs: F64")),
    ("add_shape", r#"print(zeros([2]) + zeros([3]));"#, &[], Error("+: shape mismatch in broadcast_add, lhs: [2],")),
    ("where_bad", r#"print(where(zeros([2]), zeros([3]), zeros([4])));"#, &[], Error("where: shape mismatch in where, lhs: [2], rhs:")),
    ("where_scalar", r#"print(where(zeros([2]), 1.0, "a"));"#, &[], Error("where: expected a tensor or a number, got string")),
    ("to_bad", r#"print(zeros([2]).to("f128"));"#, &[], Error("invalid device `f128`: expected cpu, cuda or")),
    ("to_cuda", r#"print(zeros([2]).to("cuda:0"));"#, &[], Error("device `cuda:0` asked for, but this ganscript")),
    ("pow_neg_frac", r#"print((zeros([2]) - 1.0).pow(0.5));"#, &[], Output("Tensor[2] f32 cpu")),
    ("log_zero", r#"print(zeros([2]).log());"#, &[], Output("Tensor[2] f32 cpu")),
    ("sqrt_neg", r#"print((zeros([2]) - 1.0).sqrt());"#, &[], Output("Tensor[2] f32 cpu")),
    ("div_zero", r#"print(ones([2]) / 0);"#, &[], Output("Tensor[2] f32 cpu")),
    ("div_zero_t", r#"print(ones([2]) / zeros([2]));"#, &[], Output("Tensor[2] f32 cpu")),
    ("int_div_zero", r#"print(1 / 0);"#, &[], Error("Division by zero: 1 / 0")),
    ("int_overflow", r#"print(9223372036854775807 + 1);"#, &[], Error("Addition overflow: 9223372036854775807 + 1")),
    ("int_mul_overflow", r#"print(9223372036854775807 * 2);"#, &[], Error("Multiplication overflow: 9223372036854775807 * 2")),
    ("int_neg_overflow", r#"print(-(-9223372036854775807 - 1));"#, &[], Error("integer overflow")),
    ("int_pow_overflow", r#"print(2 ** 100);"#, &[], Error("Exponential overflow: 2 ** 100")),
    ("float_to_int", r#"print((1e300).to_int());"#, &[], Error("Integer overflow:")),
    ("str_index", r#"let s = "abc"; print(s[10]);"#, &[], Error("String index 10 out of bounds: only 3")),
    ("arr_index", r#"let a = [1]; print(a[10]);"#, &[], Error("Array index 10 out of bounds: only 1 element in")),
    ("arr_neg_index", r#"let a = [1]; print(a[-10]);"#, &[], Error("Array index -10 out of bounds: only 1 element")),
    ("map_missing", r#"let m = #{}; print(m.x.y);"#, &[], Error("Unknown property 'y' - a getter is not")),
    ("unit_method", r#"let x = (); print(x.sum());"#, &[], Error("unknown function: sum (())")),
    ("fn_ptr_bad", r#"let f = Fn("nope"); print(f.call(1));"#, &[], Error("unknown function: nope (int)")),
    ("throw_obj", r#"throw #{a: 1};"#, &[], Error("#{\"a\": 1}")),
    ("throw_tensor", r#"throw zeros([3]);"#, &[], Error("ganscript::tensor::Tensor")),
    ("progress_zero", r#"let p = progress(0); p.tick(); p.tick(); p.finish();"#, &[], Output("")),
    ("take_neg", r#"let d = mnist(); print(d.take(-1));"#, &[], Error("take(n) must be >= 0, got -1")),
    ("take_huge", r#"let d = mnist(); print(d.take(9223372036854775807).len());"#, &[], Output("10000")),
    ("pad_to_huge", r#"let d = mnist(#{limit: 2}); print(d.pad_to(100000000));"#, &[], Error("pad_to(100000000): 2 images of")),
    ("pad_to_neg", r#"let d = mnist(#{limit: 2}); print(d.pad_to(-1));"#, &[], Error("pad_to size must be >= 0, got -1")),
    ("color_mnist_huge", r#"let d = mnist(#{limit: 2}); print(color_mnist(d, 1000000000000));"#, &[], Error("color_mnist(1000000000000): 1000000000000")),
    ("color_mnist_neg", r#"let d = mnist(#{limit: 2}); print(color_mnist(d, -1));"#, &[], Error("color_mnist n must be >= 0, got -1")),
    ("mnist_limit_neg", r#"let d = mnist(#{limit: -5}); print(d.len());"#, &[], Error("data option `limit` must be >= 1, got -5")),
    ("mnist_limit_str", r#"let d = mnist(#{limit: "a"}); print(d.len());"#, &[], Error("data option `limit` must be an integer")),
    ("mnist_pad_neg", r#"let d = mnist(#{pad_to: -5});"#, &[], Error("data option `pad_to` must be positive")),
    ("mnist_range_bad", r#"let d = mnist(#{range: "1,0"});"#, &[], Error("a range must be \"0,1\", \"-1,1\" or [lo, hi] with")),
    ("mnist_range_nan", r#"let d = mnist(#{range: [0.0/0.0, 1.0]});"#, &[], Error("a range must be \"0,1\", \"-1,1\" or [lo, hi] with")),
    ("mnist_unknown_opt", r#"let d = mnist(#{foo: 1});"#, &[], Error("unknown data option `foo`: expected range,")),
    ("batches_zero", r#"let d = mnist(#{limit: 10}); for b in batches(d, 0) { }"#, &[], Error("the batch size must be positive, got 0")),
    ("batches_neg", r#"let d = mnist(#{limit: 10}); for b in batches(d, -1) { }"#, &[], Error("the batch size must be positive, got -1")),
    ("batches_huge", r#"let d = mnist(#{limit: 10}); for b in batches(d, 9223372036854775807) { print(b.shape); }"#, &[], Output("[10, 1, 28, 28]")),
    ("batches_tensor_scalar", r#"for b in batches(tensor(1.0), 2) { }"#, &[], Error("dataset(x): x must have a sample dimension, got")),
    ("batches_bad_opt", r#"let d = mnist(#{limit: 10}); for b in batches(d, 2, #{x: 1}) { }"#, &[], Error("batches option `x` must be true or false")),
    ("num_batches_zero", r#"let d = mnist(#{limit: 10}); print(d.num_batches(0));"#, &[], Error("the batch size must be positive, got 0")),
    ("dataset_scalar", r#"print(dataset(tensor(1.0)));"#, &[], Error("dataset(x): x must have a sample dimension, got")),
    ("dataset_labels_bad", r#"print(dataset(zeros([3, 2]), zeros([2])));"#, &[], Error("dataset(x, labels): labels must have shape [3],")),
    ("dataset_labels_float", r#"print(dataset(zeros([3, 2]), tensor([0.5, 1.5, -2.0])).labels);"#, &[], Error("dataset(x, labels): label 0 is 0.5: labels must")),
    ("dataset_labels_nan", r#"print(dataset(zeros([3, 2]), tensor([0.0/0.0, 1.0, 2.0])).labels);"#, &[], Error("dataset(x, labels): label 0 is NaN: labels must")),
    ("scale_rev", r#"let d = mnist(#{limit: 2}); print(scale(d, 1.0, 0.0));"#, &[], Error("scale(ds, 1, 0): needs lo < hi")),
    ("scale_nan", r#"let d = mnist(#{limit: 2}); print(scale(d, 0.0/0.0, 1.0));"#, &[], Error("scale(ds, NaN, 1): needs lo < hi")),
    ("scale_raw", r#"let d = dataset(zeros([3,2])); print(scale(d, 0.0, 1.0));"#, &[], Error("scale: the value range of tensor is unknown")),
    ("mnist_dir_missing", r#"let d = mnist("no_such_dir");"#, &[], Error("mnist: directory no_such_dir does not exist")),
    ("cifar_missing", r#"let d = cifar10("no_such_dir");"#, &[], Error("cifar10: directory no_such_dir does not exist")),
    ("npy_missing", r#"let d = npy("no_such.npy");"#, &[], Error("npy: file no_such.npy does not exist")),
    ("npz_missing", r#"let d = npz("no_such.npz", "x");"#, &[], Error("npz: cannot open no_such.npz: No such file or")),
    ("image_folder_missing", r#"let d = image_folder("no_such_dir", 32);"#, &[], Error("image_folder: directory no_such_dir does not")),
    ("image_folder_zero", r#"let d = image_folder(".", 0);"#, &[], Error("image_folder: size must be positive")),
    ("image_folder_huge", r#"let d = image_folder("imgs_bad", 1000000000);"#, &[], Error("image_folder: 1 images of")),
    ("image_folder_neg", r#"let d = image_folder(".", -1);"#, &[], Error("image_folder: size must be positive")),
    ("deep_closure", r#"let f = |x| x; for i in 0..10000 { let g = f; f = |x| g.call(x); } print(f.call(1));"#, &[], Error("Stack overflow")),
    ("grad_nonscalar", r#"let x = variable(ones([3])); print(grad(x * 2.0, x));"#, &[], Output("Tensor[3] f32 cpu")),
    ("grad_not_var", r#"let x = ones([3]); print(grad((x * 2.0).sum(), x));"#, &[], Error("grad: Tensor[3] f32 cpu is not a variable; make")),
    ("grad_unrelated", r#"let x = variable(ones([3])); let y = variable(ones([3])); print(grad(y.sum(), x));"#, &[], Output("Tensor[3] f32 cpu")),
    ("grads_bad", r#"let x = variable(ones([3])); print(grads(x.sum(), [1, 2]));"#, &[], Error("grads: expected an array of tensors")),
    ("grads_empty", r#"let x = variable(ones([3])); print(grads(x.sum(), []));"#, &[], Output("[]")),
    ("variable_int", r#"let x = variable(tensor([1, 2])); print(grad(x.sum(), x));"#, &[], Output("[1., 1.]")),
    ("step_nonscalar", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.step(w * 2.0);"#, &[], Error("sgd.step: the loss must be a scalar, got shape")),
    ("step_nan_loss", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.step((w / w).sum() * (0.0/0.0));"#, &[], Error("sgd.step: the loss is NaN; nothing was updated.")),
    ("step_ww", r#"let w = variable(zeros([2])); let o = sgd(w, 0.1); o.step((w / w).sum()); print(w);"#, &[], Error("sgd.step: the loss is NaN; nothing was updated.")),
    ("step_log0", r#"let w = variable(zeros([2])); let o = adam(w, 0.1, 0.5, 0.9); o.step((w.log()).sum()); print(w);"#, &[], Error("adam.step: the loss is -inf; nothing was")),
    ("step_sqrtneg", r#"let w = variable(zeros([2]) - 1.0); let o = adam(w, 0.1, 0.5, 0.9); o.step(w.sqrt().sum()); print(w);"#, &[], Error("adam.step: the loss is NaN; nothing was")),
    ("step_net_nan", r#"let D = linear(3, 1); track("D", D); let o = adam(D, 0.1, 0.5, 0.9); let x = full([2, 3], 0.0/0.0); o.step(D.forward(x).sum());"#, &[], Error("adam.step: the loss is NaN; nothing was")),
    ("step_net_untracked", r#"let D = sequential([linear(3, 4), relu(), linear(4, 1)]); let o = adam(D, 0.1, 0.5, 0.9); let x = ones([2, 3]); o.step((D.forward(x) * (1.0/0.0)).sum());"#, &[], Error("adam.step: the loss is inf; nothing was")),
    ("step_grads_nan", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.step_grads([full([2], 0.0/0.0)]);"#, &[], Error("sgd.step: the gradient of variable 0 (Tensor[2]")),
    ("step_grads_shape", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.step_grads([ones([3])]);"#, &[], Error("sgd: gradient 0 has shape [3], its parameter")),
    ("step_grads_count", r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.step_grads([]);"#, &[], Error("sgd: 0 gradients for 1 parameters")),
    ("opt_empty", r#"let o = sgd([], 0.1);"#, &[], Error("sgd: no parameters to optimize")),
    ("opt_beta_bad", r#"let w = variable(ones([2])); let o = adam(w, 0.1, 1.0, 0.9);"#, &[], Error("adam: beta1 must be in [0, 1), got 1")),
    ("opt_load_state_bad", r#"let w = variable(ones([2])); let o = adam(w, 0.1, 0.5, 0.9); o.load_state(#{lr: ones([3])});"#, &[], Error("load_state: tensor \"lr\" must be a scalar")),
    ("opt_load_state_step", r#"let w = variable(ones([2])); let o = adam(w, 0.1, 0.5, 0.9); o.load_state(#{lr: tensor(0.1), "0.step": tensor(-1.0)});"#, &[], Error("load_state: tensor \"0.step\" must be a count,")),
    ("opt_load_missing", r#"let w = variable(ones([2])); let o = adam(w, 0.1, 0.5, 0.9); o.load("nope.safetensors");"#, &[], Error("load nope.safetensors: No such file or")),
    ("net_load_missing", r#"let n = linear(2, 2); n.load("nope.safetensors");"#, &[], Error("load nope.safetensors: No such file or")),
    ("net_set_param_bad", r#"let n = linear(2, 2); n.set_param("weight", ones([3, 3]));"#, &[], Error("set_param: tensor \"weight\" has shape [3, 3],")),
    ("net_set_param_name", r#"let n = linear(2, 2); n.set_param("nope", ones([2, 2]));"#, &[], Error("set_param: no tensor named \"nope\" (the net has:")),
    ("net_set_param_u8", r#"let n = linear(2, 2); n.set_param("weight", ones([2, 2]).to("u8")); print(n.forward(ones([1, 2])));"#, &[], Output("Tensor[1, 2] f32 cpu")),
    ("net_copy_from_bad", r#"let n = linear(2, 2); n.copy_from(linear(3, 3));"#, &[], Error("copy_from: the nets differ: tensor \"weight\" has")),
    ("net_ema_bad", r#"let n = linear(2, 2); let a = ema(n, 2.0);"#, &[], Error("ema: decay must be in [0, 1], got 2")),
    ("net_ema_update_bad", r#"let n = linear(2, 2); let a = ema(n); a.ema_update(linear(3, 3), 0.5);"#, &[], Error("ema_update: the nets differ: weight [2, 2] vs")),
    ("net_ema_nan", r#"let n = linear(2, 2); let a = ema(n); a.ema_update(n, 0.0/0.0);"#, &[], Error("ema_update: decay must be in [0, 1], got NaN")),
    ("net_init_bad", r#"let n = linear(2, 2); n.init("nope");"#, &[], Error("init: unknown scheme \"nope\": expected")),
    ("net_forward_shape", r#"let n = linear(2, 2); print(n.forward(ones([3, 5])));"#, &[], Error("forward: linear(2, 2): expected input [N, 2],")),
    ("net_forward_scalar", r#"let n = linear(2, 2); print(n.forward(tensor(1.0)));"#, &[], Error("forward: linear(2, 2): expected input [N, 2],")),
    ("net_forward_rank", r#"let n = conv2d(1, 2, 3, 1, 1); print(n.forward(ones([3, 5])));"#, &[], Error("forward: conv2d(1, 2, k=3, s=1, p=1): expected")),
    ("net_forward_f64", r#"let n = linear(2, 2); print(n.forward(ones([3, 2]).to("f64")));"#, &[], Error("forward: dtype mismatch in matmul, lhs: F64,")),
    ("net_bn_batch1", r#"let n = batch_norm(2); print(n.forward(ones([1, 2])));"#, &[], Error("forward: batch_norm(2): training mode needs")),
    ("net_bn_empty", r#"let n = batch_norm(2); print(n.forward(ones([0, 2])));"#, &[], Error("forward: batch_norm(2): training mode needs")),
    ("net_ln_bad", r#"let n = layer_norm(3); print(n.forward(ones([2, 2])));"#, &[], Error("forward: layer_norm(3): expected the last")),
    ("net_reshape_bad", r#"let n = reshape([5]); print(n.forward(ones([2, 3])));"#, &[], Error("forward: reshape([5]): cannot reshape samples")),
    ("net_reshape_neg", r#"let n = reshape([-1]);"#, &[], Error("shape entries must be >= 0, got -1")),
    ("net_seq_bad", r#"let n = sequential([1, 2]);"#, &[], Error("sequential: item 0: expected a Net, got i64")),
    ("net_seq_empty", r#"let n = sequential([]); print(n.forward(ones([2, 2])));"#, &[], Output("Tensor[2, 2] f32 cpu")),
    ("net_residual_shape", r#"let n = residual(linear(2, 3)); print(n.forward(ones([1, 2])));"#, &[], Error("forward: residual (x + f(x)): the body maps [1,")),
    ("net_summary_bad", r#"let n = linear(2, 2); print(n.summary([5]));"#, &[], Error("summary: linear(2, 2): expected input [N, 2],")),
    ("net_summary_huge", r#"let n = linear(2, 2); print(n.summary([100000000000]));"#, &[], Error("summary: a tensor of shape [1, 100000000000]")),
    ("net_summary_neg", r#"let n = linear(2, 2); print(n.summary([-1]));"#, &[], Error("shape entries must be >= 0, got -1")),
    ("net_fwg_notvar", r#"let n = linear(2, 1); print(n.forward_with_grad(ones([2, 2])));"#, &[], Error("forward_with_grad: Tensor[2, 2] f32 cpu is not")),
    ("net_leaky_nan", r#"let n = leaky_relu(0.0/0.0); print(n.forward(ones([1, 2])));"#, &[], Error("leaky_relu: the slope must be a finite number,")),
    ("arch_empty", r#"let n = arch("");"#, &[], Error("arch: empty architecture string")),
    ("arch_bad", r#"let n = arch("784-x-10");"#, &[], Error("arch: bad layer \"x\" at token 2: expected a")),
    ("arch_one", r#"let n = arch("784");"#, &[], Error("arch: \"784\" has one width: a fully connected")),
    ("arch_huge", r#"let n = arch("1000000000-1000000000");"#, &[], Error("arch: a parameter of shape [1000000000,")),
    ("arch_conv_bad", r#"let n = arch("(128)7c1s-(64)4cs");"#, &[], Error("arch: bad layer \"(64)4cs\" at token 2: expected")),
    ("arch_conv_zero", r#"let n = arch("(0)7c1s");"#, &[], Error("arch: bad layer \"(0)7c1s\" at token 1: expected")),
    ("arch_conv_huge", r#"let n = arch("(100000)100c1s-(100000)100c1s", #{in_channels: 100000});"#, &[], Error("arch: a parameter of shape [100000, 100000,")),
    ("arch_opt_bad", r#"let n = arch("784-10", #{nope: 1});"#, &[], Error("arch: unknown option \"nope\": expected")),
    ("arch_opt_type", r#"let n = arch("784-10", #{batch_norm: 1});"#, &[], Error("arch: option batch_norm must be true or false")),
    ("arch_input_huge", r#"let n = arch("(1)4c2s", #{input: [9223372036854775807, 2]});"#, &[], Error("arch: a convolutional net takes a per-sample")),
    ("arch_padding_bad", r#"let n = arch("(1)4c2s", #{padding: "weird"});"#, &[], Error("arch: padding \"weird\": expected \"auto\", \"same\",")),
    ("arch_padding_huge", r#"let n = arch("(1)4c2s", #{padding: 9223372036854775807}); print(n.forward(ones([1,1,4,4])));"#, &[], Error("arch: a convolutional net needs the number of")),
    ("arch_out_shape", r#"let n = arch("784-10", #{output_shape: [3, 3]}); print(n.forward(ones([2, 784])));"#, &[], Error("forward: layer 1 (reshape([3, 3])): cannot")),
    ("dcgan_g_bad", r#"let n = dcgan_g(17, 100, 3, true);"#, &[], Error("dcgan_g: dcgan_g: image size 17 is not")),
    ("dcgan_g_huge", r#"let n = dcgan_g(64, 10000000000, 3, true);"#, &[], Error("dcgan_g: a parameter of shape [10000000000,")),
    ("dcgan_d_bad", r#"let n = dcgan_d(0, 3, true);"#, &[], Error("dcgan_d: size must be >= 1, got 0")),
    ("magan_g_huge", r#"let n = magan_mnist_g(10000000000);"#, &[], Error("arch: a parameter of shape [10000000000, 128,")),
    ("lens_huge", r#"let n = tempered_lens(3, 1000000, 8);"#, &[], Error("tempered_lens: a parameter of shape [1000000,")),
    ("magan_ae_bad", r#"let n = magan_conv_ae(17, 3);"#, &[], Error("magan_conv_ae: magan_conv_ae: image size 17 is")),
    ("nsgan_shape", r#"print(nsgan_d(ones([2]), ones([3])));"#, &[], Output("Tensor[] f32 cpu")),
    ("nsgan_empty", r#"print(nsgan_d(zeros([0]), ones([3])));"#, &[], Error("nsgan_d: dr is empty")),
    ("nsgan_u8", r#"print(nsgan_d(ones([2]).to("u8"), ones([2])));"#, &[], Error("nsgan_d: dr must be a float tensor of logits,")),
    ("wgan_u8", r#"print(wgan_d(ones([2]).to("u8"), ones([2]).to("u8")));"#, &[], Error("wgan_d: dr must be a float tensor of logits,")),
    ("rphinge_shape", r#"print(rphinge_d(ones([2]), ones([3])));"#, &[], Error("rphinge_d pairs real and fake samples by index:")),
    ("d_loss_bad", r#"print(d_loss("nope", ones([2]), ones([2])));"#, &[], Error("unknown GAN loss kind \"nope\"; valid kinds:")),
    ("g_loss_bad", r#"print(g_loss("nope", ones([2]), ones([2])));"#, &[], Error("unknown GAN loss kind \"nope\"; valid kinds:")),
    ("energy_shape", r#"print(energy(ones([2, 3]), ones([2, 4])));"#, &[], Error("energy: the reconstruction [2, 3] and the input")),
    ("energy_fn_bad", r#"fn ae(x) { 5 } print(energy(Fn("ae"), ones([2, 3])));"#, &[], Error("the network function ae returned i64, expected")),
    ("energy_fn_shape", r#"fn ae(x) { ones([7]) } print(energy(Fn("ae"), ones([2, 3])));"#, &[], Error("energy: the reconstruction [7] and the input")),
    ("ebgan_empty", r#"print(ebgan_d_loss(zeros([0]), ones([2]), 1.0));"#, &[], Error("ebgan_d_loss: expected a non-empty float tensor")),
    ("ebgan_g_u8", r#"print(ebgan_g_loss(ones([2]).to("u8")));"#, &[], Error("ebgan_g_loss: expected a non-empty float tensor")),
    ("conv_measure_empty", r#"print(convergence_measure(zeros([0]), ones([2])));"#, &[], Error("convergence_measure: expected a non-empty float")),
    ("lens_loss_bad", r#"print(lens_loss("nope", 1.0, ones([2]), ones([2, 3]), ones([2, 3])));"#, &[], Error("lens_loss: unknown kind \"nope\"; valid kinds:")),
    ("lens_loss_shape", r#"print(lens_loss("gan", 1.0, ones([2]), ones([2, 3]), ones([2, 4])));"#, &[], Error("lens_loss: x [2, 3] and lx [2, 4] must have the")),
    ("lens_loss_nan", r#"print(lens_loss("gan", 0.0/0.0, ones([2]), ones([2, 3]), ones([2, 3])));"#, &[], Error("lens_loss: lam must be a finite number, got NaN")),
    ("gp_shape", r#"let D = linear(3, 1); print(gradient_penalty(D, ones([2, 3]), ones([3, 3])));"#, &[], Error("gradient_penalty: real [2, 3] and fake [3, 3]")),
    ("gp_wrong_in", r#"let D = linear(3, 1); print(gradient_penalty(D, ones([2, 4]), ones([2, 4])));"#, &[], Error("linear(3, 1): expected input [N, 3], got [2, 4]")),
    ("gp_opts_bad", r#"let D = linear(3, 1); print(gradient_penalty(D, ones([2, 3]), ones([2, 3]), #{nope: 1}));"#, &[], Error("gradient_penalty: unknown option `nope`; the")),
    ("gp_opts_target", r#"let D = linear(3, 1); print(gradient_penalty(D, ones([2, 3]), ones([2, 3]), #{target: 0.0/0.0}));"#, &[], Error("gradient_penalty: target must be a finite")),
    ("gp_opts_norm", r#"let D = linear(3, 1); print(gradient_penalty(D, ones([2, 3]), ones([2, 3]), #{norm: "l7"}));"#, &[], Error("gradient_penalty: unknown norm \"l7\"; valid")),
    ("gp_fn_bad", r#"fn d(x) { "a" } print(gradient_penalty(Fn("d"), ones([2, 3]), ones([2, 3])));"#, &[], Error("the network function d returned string,")),
    ("gp_fn_nonscalar", r#"fn d(x) { x } print(gradient_penalty(Fn("d"), ones([2, 3]), ones([2, 3])));"#, &[], Output("Tensor[] f32 cpu")),
    ("gp_empty", r#"let D = linear(3, 1); print(gradient_penalty(D, zeros([0, 3]), zeros([0, 3])));"#, &[], Error("gradient_penalty: expected a non-empty batch")),
    ("r1_scalar", r#"let D = linear(3, 1); print(r1(D, tensor(1.0)));"#, &[], Error("r1/r2: expected a batch [N, ...], got a scalar")),
    ("roth_shape", r#"let D = linear(3, 1); print(roth_js(D, ones([2, 3]), ones([2, 4])));"#, &[], Error("roth_js: real [2, 3] and fake [2, 4] must have")),
    ("grad_norms_bad", r#"let D = linear(3, 1); print(grad_norms(D, ones([2, 3]), "l9"));"#, &[], Error("gradient_penalty: unknown norm \"l9\"; valid")),
    ("interp_shape", r#"print(interpolate_batch(ones([2, 3]), ones([3, 3]), ones([2])));"#, &[], Error("interpolate: real [2, 3] and fake [3, 3] must")),
    ("interp_u_bad", r#"print(interpolate_batch(ones([2, 3]), ones([2, 3]), ones([5])));"#, &[], Error("gradient_penalty: `u` must hold one weight per")),
    ("interp_u8", r#"print(interpolate_batch(ones([2, 3]).to("u8"), ones([2, 3]).to("u8"), ones([2])));"#, &[], Error("interpolate: needs a float tensor, got a u8")),
    ("ce_scalar_logits", r#"print(cross_entropy(tensor(1.0), [0]));"#, &[], Error("cross_entropy: logits must be [N, C], got shape")),
    ("ce_empty", r#"print(cross_entropy(zeros([0, 3]), []));"#, &[], Error("cross_entropy: empty logits of shape [0, 3]")),
    ("ce_labels_str", r#"print(cross_entropy(ones([1, 3]), ["a"]));"#, &[], Error("cross_entropy: labels must be integers, got")),
    ("ce_labels_big", r#"print(cross_entropy(ones([1, 3]), [9223372036854775807]));"#, &[], Error("cross_entropy: labels must be integers in 0..3,")),
    ("mode_stats_bad", r#"print(mode_stats(ones([4, 2]), ones([3, 3]), 0.1));"#, &[], Error("mode_stats: samples have dimension 2 but the")),
    ("mode_stats_neg", r#"print(mode_stats(ones([4, 2]), ones([3, 2]), -0.1));"#, &[], Error("mode_stats: std must be > 0, got -0.1")),
    ("mode_stats_nan", r#"print(mode_stats(ones([4, 2]), ones([3, 2]), 0.0/0.0));"#, &[], Error("mode_stats: std must be > 0, got NaN")),
    ("mode_stats_empty", r#"print(mode_stats(zeros([0, 2]), ones([3, 2]), 0.1));"#, &[], Error("mode_stats: no samples")),
    ("mode_stats_nocenters", r#"print(mode_stats(ones([4, 2]), zeros([0, 2]), 0.1));"#, &[], Error("mode_stats: samples (8 values) and centres (0")),
    ("mode_stats_opts", r#"print(mode_stats(ones([4, 2]), ones([3, 2]), 0.1, #{nope: 1}));"#, &[], Error("mode_stats: unknown option \"nope\": expected")),
    ("mnist_score_bad", r#"print(mnist_score(ones([4, 3])));"#, &[], Error("mnist_score: expected MNIST-sized images")),
    ("mnist_score_nan", r#"print(mnist_score(full([4, 1, 28, 28], 0.0/0.0)));"#, &[], Error("mnist_score: the samples contain NaN or")),
    ("mnist_score_empty", r#"print(mnist_score(zeros([0, 1, 28, 28])));"#, &[], Error("mnist_score: no samples (shape [0, 1, 28, 28])")),
    ("mnist_score_u8", r#"print(mnist_score(ones([4, 1, 28, 28]).to("u8")));"#, &[], Output("#{\"n\": 4, \"score\": 1.0, \"splits\": 1, \"st")),
    ("mnist_score_str", r#"print(mnist_score("a"));"#, &[], Error("mnist_score: expected a Tensor of images or a")),
    ("mnist_fid_bad", r#"print(mnist_fid(ones([4, 1, 28, 28]), ones([4, 3])));"#, &[], Error("mnist_features: expected MNIST-sized images")),
    ("mnist_fid_small", r#"print(mnist_fid(ones([1, 1, 28, 28]), ones([1, 1, 28, 28])));"#, &[], Error("mnist_fid: samples: a covariance needs at least")),
    ("mnist_feat_opts", r#"print(mnist_features(ones([4, 1, 28, 28]), #{nope: 1}));"#, &[], Error("mnist_features: unknown option \"nope\": expected")),
    ("mnist_predict_shape", r#"print(mnist_predict(ones([4, 1, 27, 28]), #{}));"#, &[], Error("mnist_predict: expected MNIST-sized images")),
    ("cross_test_bad", r#"print(cross_test([], [], ones([2])));"#, &[], Error("cross_test: no discriminators")),
    ("cross_test_types", r#"print(cross_test([1], [2], ones([2])));"#, &[], Error("cross_test: discriminator 0 must be a function")),
    ("sched_cosine_bad", r#"let s = cosine(1.0, 0.0, 0); print(s.step());"#, &[], Error("cosine: T must be > 0, got 0")),
    ("sched_cosine_neg", r#"let s = cosine(1.0, 0.0, -5); print(s.at(3));"#, &[], Error("cosine: T must be > 0, got -5")),
    ("sched_step_decay_bad", r#"let s = step_decay(1.0, 0.5, 0); print(s.at(3));"#, &[], Error("step_decay: every must be > 0, got 0")),
    ("sched_exp_nan", r#"let s = exp_anneal(0.0/0.0, 1.0, 10); print(s.at(3));"#, &[], Error("exp_anneal: start must be finite, got NaN")),
    ("sched_at_huge", r#"let s = cosine(1.0, 0.0, 10); print(s.at(9223372036854775807));"#, &[], Output("0.0")),
    ("sched_at_nan", r#"let s = cosine(1.0, 0.0, 10); print(s.at(0.0/0.0));"#, &[], Error("at(t): t must be a number, got NaN")),
    ("sched_set_state_bad", r#"let s = cosine(1.0, 0.0, 10); s.set_state(#{a: 1});"#, &[], Error("schedule state: the map needs a string `kind`")),
    ("sched_sine_bad", r#"let s = sine_decay(-1); print(s.at(1));"#, &[], Error("sine_decay: K must be > 0, got -1")),
    ("magan_acc_shape", r#"let m = magan_margin(); m.accumulate(ones([2]), ones([3]));"#, &[], Output("")),
    ("magan_acc_nan", r#"let m = magan_margin(); m.accumulate(full([2], 0.0/0.0), ones([2])); m.end_epoch(); print(m);"#, &[], Error("magan margin: the real energies are not finite")),
    ("magan_init_nan", r#"let m = magan_margin(); m.init(0.0/0.0); print(m);"#, &[], Error("magan margin: the initial margin must be a")),
    ("magan_init_neg", r#"let m = magan_margin(); m.init(-1.0); print(m);"#, &[], Error("magan margin: the initial margin must be a")),
    ("magan_end_empty", r#"let m = magan_margin(); m.end_epoch(); print(m);"#, &[], Error("magan margin: end_epoch() with no energies")),
    ("magan_set_state", r#"let m = magan_margin(); m.set_state(#{margin: "a"});"#, &[], Error("magan margin state: `margin` must be a number,")),
    ("magan_end_bad", r#"let m = magan_margin(); m.end_epoch(1.0, -5.0, 3); print(m);"#, &[], Error("magan margin: the margin is not set yet; call")),
    ("save_grid_bad", r#"save_grid(ones([3]), "g.png", 2);"#, &[], Error("save_grid: expected images [N, C, H, W] with C")),
    ("save_grid_nrow0", r#"save_grid(ones([4, 1, 8, 8]), "g.png", 0);"#, &[], Error("save_grid: nrow (images per row) must be")),
    ("save_grid_nrow_neg", r#"save_grid(ones([4, 1, 8, 8]), "g.png", -1);"#, &[], Error("save_grid: nrow must be positive, got -1")),
    ("save_grid_nan", r#"save_grid(full([4, 1, 8, 8], 0.0/0.0), "g.png", 2);"#, &[], Output("")),
    ("save_grid_channels", r#"save_grid(ones([4, 5, 8, 8]), "g.png", 2);"#, &[], Error("save_grid: expected images [N, C, H, W] with C")),
    ("save_grid_empty", r#"save_grid(zeros([0, 1, 8, 8]), "g.png", 2);"#, &[], Error("save_grid: no images to draw (shape [0, 1, 8,")),
    ("save_grid_opts", r#"save_grid(ones([4, 1, 8, 8]), "g.png", 2, #{nope: 1});"#, &[], Error("save_grid: unknown option `nope`: expected")),
    ("save_grid_range", r#"save_grid(ones([4, 1, 8, 8]), "g.png", 2, #{range: [1, 0]});"#, &[], Error("a range must be \"0,1\", \"-1,1\" or [lo, hi] with")),
    ("save_grid_ext", r#"save_grid(ones([4, 1, 8, 8]), "g.txt", 2);"#, &[], Output("")),
    ("plot_bad", r#"plot("p.png", 5);"#, &[], Error("plot: keys must be a string or an array of")),
    ("plot_empty", r#"plot("p.png", []);"#, &[], Error("plot: no keys given")),
    ("plot_nan", r#"plot("p.png", [1.0, 0.0/0.0, 2.0]);"#, &[], Error("plot: keys must be strings")),
    ("plot_str", r#"plot("p.png", ["a"]);"#, &[], Error("plot: no logged values for a; logged keys: none")),
    ("plot_opts", r#"plot("p.png", [1.0, 2.0], #{nope: 1});"#, &[], Error("plot: keys must be strings")),
    ("scatter_bad", r#"scatter("s.png", ones([3]));"#, &[], Error("scatter: points must have shape [N, 2] or [N,")),
    ("scatter_nan", r#"scatter("s.png", full([3, 2], 0.0/0.0));"#, &[], Output("")),
    ("scatter_empty", r#"scatter("s.png", zeros([0, 2]));"#, &[], Output("")),
    ("scatter_3d", r#"scatter("s.png", ones([3, 3]));"#, &[], Output("")),
    ("scatter_opts", r#"scatter("s.png", ones([3, 2]), #{nope: 1});"#, &[], Error("scatter: unknown option `nope`: expected")),
    ("log_nan", r#"log(#{loss: 0.0/0.0}); log(#{loss: 1.0});"#, &[], Output("")),
    ("log_tensor", r#"log(#{loss: ones([3])});"#, &[], Error("log: `loss` is a tensor of shape [3]; log one")),
    ("log_bad_type", r#"log(#{loss: [1, 2]});"#, &[], Error("log: `loss` is a array; log numbers, strings,")),
    ("log_weird_key", r#"log(#{"a,b": 1.0}); log(#{"a\nb": 2.0});"#, &[], Output("")),
    ("log_many_keys", r#"let m = #{}; for i in 0..2000 { m[`k${i}`] = 1.0; } log(m);"#, &[], Output("")),
    ("progress_tick_opts", r#"let p = progress(3); p.tick(#{a: [1]}); p.finish();"#, &[], Output("")),
    ("progress_huge", r#"let p = progress(9223372036854775807); p.tick(); p.finish();"#, &[], Output("")),
    ("run_path_bad", r#"print(run_path(""));"#, &[], Error("an output file name must not be empty")),
    ("fixed_noise_bad", r#"print(fixed_noise("a", -1));"#, &[], Error("shape entries must be >= 0, got -1")),
    ("fixed_noise_huge", r#"print(fixed_noise("a", [100000000000, 10]));"#, &[], Error("fixed_noise: a tensor of shape [100000000000,")),
    ("fixed_noise_str", r#"print(fixed_noise("a", "b"));"#, &[], Error("expected a shape (an array of integers such as")),
    ("ckpt_track_twice", r#"let n = linear(2,2); track("n", n); track("n", n);"#, &[], Error("track: `n` is already tracked")),
    ("ckpt_track_bad", r#"track("x", 5);"#, &[], Error("track(\"x\", ...): only nets and optimizers are")),
    ("batches_labels_none", r#"let d = dataset(ones([4, 2])); for b in labeled_batches(d, 2) { print(b); }"#, &[], Output("#{\"x\": Tensor[2, 2] f32 cpu")),
    ("batches_tensor_opts", r#"for b in batches(ones([4, 2]), 2, #{shuffle: 5}) { }"#, &[], Error("batches option `shuffle` must be true or false")),
    ("batches_drop_all", r#"let n = 0; for b in batches(ones([4, 2]), 8, #{drop_last: true}) { n += 1; } print(n);"#, &[], Output("0")),
    ("batches_u8", r#"for b in batches(ones([4, 2]).to("u8"), 2) { print(b); }"#, &[], Output("Tensor[2, 2] f32 cpu")),
    ("where_u8_mask", r#"print(where(ones([2]).to("u8"), 1.0, 2.0));"#, &[], Output("Tensor[2] f32 cpu")),
    ("tensor_nan", r#"print(tensor([0.0/0.0]));"#, &[], Output("Tensor[1] f32 cpu")),
    ("item_nan", r#"print(full([1], 0.0/0.0).item());"#, &[], Output("NaN")),
    ("is_nan_big", r#"print(zeros([10]).is_nan());"#, &[], Output("false")),
    ("default_dtype_f16_net", r#"default_dtype("f16"); let n = linear(3, 2); let o = adam(n, 0.1, 0.5, 0.9); o.step(n.forward(ones([2, 3])).sum()); print("ok");"#, &[], Output("ok")),
    ("default_dtype_bf16_bn", r#"default_dtype("bf16"); let n = batch_norm(3); print(n.forward(ones([4, 3])));"#, &[], Output("Tensor[4, 3] bf16 cpu")),
    ("f16_conv", r#"let x = ones([1, 1, 4, 4]).to("f16"); let w = ones([1, 1, 3, 3]).to("f16"); print(conv2d(x, w));"#, &[], Output("Tensor[1, 1, 2, 2] f16 cpu")),
    ("f16_softplus", r#"print(ones([3]).to("f16").softplus());"#, &[], Output("Tensor[3] f16 cpu")),
    ("f16_log_softmax", r#"print(ones([3]).to("f16").log_softmax());"#, &[], Output("Tensor[3] f16 cpu")),
    ("bf16_sigmoid", r#"print(ones([3]).to("bf16").sigmoid());"#, &[], Output("Tensor[3] bf16 cpu")),
    ("f16_l2", r#"print(ones([2, 3]).to("f16").l2());"#, &[], Output("Tensor[2] f16 cpu")),
    ("f16_ce", r#"print(cross_entropy(ones([2, 3]).to("f16"), [0, 1]));"#, &[], Output("Tensor[] f16 cpu")),
    ("f16_gp", r#"let D = linear(3, 1); print(gradient_penalty(D, ones([2, 3]).to("f16"), ones([2, 3]).to("f16")));"#, &[], Error("dtype mismatch in matmul, lhs: F16, rhs: F32")),
    ("f16_mnist_score", r#"print(mnist_score(ones([4, 1, 28, 28]).to("f16")));"#, &[], Output("#{\"n\": 4, \"score\": 1.0, \"splits\": 1, \"st")),
    ("f16_save_grid", r#"save_grid(ones([4, 1, 8, 8]).to("f16"), "g.png", 2);"#, &[], Output("")),
    ("f16_frechet", r#"let m = zeros([2]).to("f16"); let c = tensor([[1.0, 0.0], [0.0, 1.0]]).to("f16"); print(frechet_distance(m, c, m, c));"#, &[], Output("0.0")),
    ("f16_mode_stats", r#"print(mode_stats(ones([4, 2]).to("f16"), ones([3, 2]).to("f16"), 0.1));"#, &[], Output("#{\"assigned\": [4, 0, 0], \"counts\": [4, 0")),
    ("f16_bn", r#"let n = batch_norm(3); print(n.forward(ones([4, 3]).to("f16")));"#, &[], Error("forward: dtype mismatch in div, lhs: F32, rhs:")),
    ("f16_matmul", r#"print(ones([2, 3]).to("f16").matmul(ones([3, 2]).to("f16")));"#, &[], Output("Tensor[2, 2] f16 cpu")),
    ("deep_arr_3k", r#"let a = []; for i in 0..3000 { a = [a]; } print(a.len()); let b = a; print("dropped");"#, &[], Output("1")),
    ("deep_arr_tensor", r#"let a = [1.0]; for i in 0..3000 { a = [a]; } print(tensor(a));"#, &[], Error("tensor(...): the array is nested more than 32")),
    ("deep_arr_ckpt", r#"let n = linear(2,2); track("n", n); let a = []; for i in 0..3000 { a = [a]; } save_checkpoint(#{a: a});"#, &[], Error("save_checkpoint: the state map nests more than")),
    ("deep_map_3k", r#"let a = #{}; for i in 0..3000 { a = #{x: a}; } print(a.len());"#, &[], Output("1")),
    ("deep_arr_print", r#"let a = []; for i in 0..3000 { a = [a]; } let s = `${a}`; print(s.len());"#, &[], Output("6002")),
    ("lens_blocks_huge", r#"let n = tempered_lens(3, 32, 1000000);"#, &["--max-memory=512M"], Error("tempered_lens: a parameter of shape")),
    ("many_small_tensors", r#"let a = []; for i in 0..10000000 { a.push(zeros([1000])); }"#, &["--max-memory=512M"], Error("zeros: a tensor of shape [1000]")),
    ("str_double_ops", r#"let s = "abcdefgh"; loop { s = s + s; }"#, &[], Error("Length of string too large")),
    ("ckpt_bad_type", r#"let n = linear(2,2); track("n", n); save_checkpoint(#{f: Fn("seed")});"#, &[], Error("save_checkpoint: `.f` is a Fn, which cannot go")),
    ("u8_var", r#"let x = ones([3]).to("u8"); print(x.var());"#, &[], Error("syntax error: 'var' is a reserved keyword")),
    ("var_empty", r#"print(zeros([0]).var());"#, &[], Error("syntax error: 'var' is a reserved keyword")),
    ("to_u8_neg", r#"print((zeros([2]) - 5.0).to("u8"));"#, &[], Error("to(\"u8\"): the value -5 is not in the range")),
    ("to_u8_nan", r#"print((zeros([2]) / 0.0).to("u8"));"#, &[], Error("to(\"u8\"): the value NaN is not in the range")),
    ("to_i64_inf", r#"print((ones([2]) / 0.0).to("i64"));"#, &[], Error("to(\"i64\"): the value inf is not in the range")),
    ("to_u32_big", r#"print((ones([2]) * 1e20).to("u32"));"#, &[], Error("to(\"u32\"): the value 1000000020")),
    ("to_u8_ok", r#"print((ones([2]) * 200.0).to("u8").to_array());"#, &[], Output("[200, 200]")),
    ("progress_neg", r#"let p = progress(-5); p.tick();"#, &[], Error("progress: the total must be >= 0, got -5")),
];

// ---------- generated data files ----------

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images_header(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b
}

fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = idx_images_header(n, rows, cols);
    b.extend((0..n * rows * cols).map(|i| (i % 251) as u8));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

/// A gzip stream of `header` then `zeros` zero bytes, compressed as it is written (a bomb:
/// about a thousandth of its inflated size).
fn gz_bomb(header: &[u8], zeros: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(header).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len());
        e.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    e.finish().unwrap()
}

fn npy_header(version: u8, descr: &str, shape: &str, fortran: bool) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (12 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY".to_vec();
    b.push(version);
    b.push(0);
    if version == 1 {
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    b.extend_from_slice(header.as_bytes());
    b
}

fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut b = npy_header(1, descr, shape, false);
    b.extend_from_slice(body);
    b
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A PNG of `w`×`h` pixels whose header then claims `claim_w`×`claim_h` (checksum fixed up).
fn png_claiming(claim_w: u32, claim_h: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    // The IHDR chunk: length (4) at 8, type at 12, data at 16 (width, height, ...), CRC after 13 bytes.
    bytes[16..20].copy_from_slice(&claim_w.to_be_bytes());
    bytes[20..24].copy_from_slice(&claim_h.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    bytes
}

fn script(name: &str, text: &str, expect: Expectation) -> Case {
    Case {
        name: name.to_string(),
        script: text.to_string(),
        args: Vec::new(),
        expect,
    }
}

fn err(text: &str) -> Expectation {
    Expectation::Error(text.to_string())
}

/// Writes the bad data files into `dir` and returns the scripts that load them.
fn data_cases(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let labels2 = idx_labels(&[1, 2]);

    // IDX: truncated, wrong magic, giant headers, a bomb, bad labels, empty, mismatched, corrupt gzip.
    let mut short = idx_images(2, 4, 4);
    short.truncate(30);
    write(dir, "idx_trunc/train-images-idx3-ubyte", &short);
    write(dir, "idx_trunc/train-labels-idx1-ubyte", &labels2);
    cases.push(script("idx_truncated", r#"let d = mnist("idx_trunc");"#,
        err("idx_trunc/train-images-idx3-ubyte: truncated IDX image file: 2 images of 4×4 need 48 bytes, found 30")));
    let mut magic = idx_images(2, 4, 4);
    magic[3] = 1;
    write(dir, "idx_magic/train-images-idx3-ubyte", &magic);
    write(dir, "idx_magic/train-labels-idx1-ubyte", &labels2);
    cases.push(script("idx_wrong_magic", r#"let d = mnist("idx_magic");"#,
        err("wrong magic number for an IDX image file: expected 0x00000803, found 0x00000801 (this is a label file)")));
    write(
        dir,
        "idx_swapped/train-images-idx3-ubyte",
        &idx_images(2, 4, 4),
    );
    write(
        dir,
        "idx_swapped/train-labels-idx1-ubyte",
        &idx_images(2, 4, 4),
    );
    cases.push(script(
        "idx_labels_are_images",
        r#"let d = mnist("idx_swapped");"#,
        err("idx_swapped/train-labels-idx1-ubyte: wrong magic number for an IDX label file"),
    ));
    let mut giant = idx_images_header(u32::MAX, 28, 28);
    giant.extend_from_slice(&[0; 100]);
    write(dir, "idx_giant/train-images-idx3-ubyte", &giant);
    write(dir, "idx_giant/train-labels-idx1-ubyte", &labels2);
    cases.push(script("idx_giant_header", r#"let d = mnist("idx_giant");"#,
        err("truncated IDX image file: 4294967295 images of 28×28 need 3367254359296 bytes, found 116")));
    write(dir, "idx_giant_gz/train-images-idx3-ubyte.gz", &gz(&giant));
    write(
        dir,
        "idx_giant_gz/train-labels-idx1-ubyte.gz",
        &gz(&labels2),
    );
    cases.push(script(
        "idx_giant_header_gz",
        r#"let d = mnist("idx_giant_gz");"#,
        err("idx_giant_gz/train-images-idx3-ubyte.gz: 4294967295 images of 28×28 needs"),
    ));
    // 1.3 M images of 28×28 (1 GB, inflated from about 1 MB): refused before inflating; with a
    // limit only the first images are read.
    let n_bomb = 1_300_000u32;
    write(
        dir,
        "idx_bomb/train-images-idx3-ubyte.gz",
        &gz_bomb(&idx_images_header(n_bomb, 28, 28), n_bomb as usize * 784),
    );
    let mut lab_header = vec![0, 0, 8, 1];
    lab_header.extend_from_slice(&n_bomb.to_be_bytes());
    write(
        dir,
        "idx_bomb/train-labels-idx1-ubyte.gz",
        &gz_bomb(&lab_header, n_bomb as usize),
    );
    let mut c = script(
        "idx_gzip_bomb",
        r#"let d = mnist("idx_bomb");"#,
        err("idx_bomb/train-images-idx3-ubyte.gz: 1300000 images of 28×28 needs"),
    );
    c.args = vec!["--max-memory".into(), "2G".into()];
    cases.push(c);
    let mut c = script(
        "idx_gzip_bomb_limit",
        r#"let d = mnist("idx_bomb", #{limit: 10}); print(d.len()); print(d.images.shape);"#,
        Expectation::Output("10\n[10, 1, 28, 28]".into()),
    );
    c.args = vec!["--max-memory".into(), "2G".into()];
    cases.push(c);
    write(
        dir,
        "idx_label200/train-images-idx3-ubyte",
        &idx_images(3, 2, 2),
    );
    write(
        dir,
        "idx_label200/train-labels-idx1-ubyte",
        &idx_labels(&[1, 200, 3]),
    );
    cases.push(script("idx_label_200", r#"let d = mnist("idx_label200");"#,
        err("idx_label200/train-labels-idx1-ubyte: label 1 is 200: MNIST and Fashion-MNIST labels are classes 0..9")));
    write(
        dir,
        "idx_empty/train-images-idx3-ubyte",
        &idx_images(0, 28, 28),
    );
    write(dir, "idx_empty/train-labels-idx1-ubyte", &idx_labels(&[]));
    cases.push(script(
        "idx_empty_set",
        r#"let d = mnist("idx_empty");"#,
        err("idx_empty/train-images-idx3-ubyte: the IDX image file holds no images"),
    ));
    write(
        dir,
        "idx_zero_px/train-images-idx3-ubyte",
        &idx_images(2, 0, 28),
    );
    write(dir, "idx_zero_px/train-labels-idx1-ubyte", &labels2);
    cases.push(script(
        "idx_zero_pixels",
        r#"let d = mnist("idx_zero_px");"#,
        err("idx_zero_px/train-images-idx3-ubyte: the IDX header declares images of 0×28 pixels"),
    ));
    write(
        dir,
        "idx_mismatch/train-images-idx3-ubyte",
        &idx_images(2, 2, 2),
    );
    write(
        dir,
        "idx_mismatch/train-labels-idx1-ubyte",
        &idx_labels(&[1, 2, 3]),
    );
    cases.push(script(
        "idx_count_mismatch",
        r#"let d = mnist("idx_mismatch");"#,
        err("image/label count mismatch: idx_mismatch/train-images-idx3-ubyte has 2 images"),
    ));
    write(
        dir,
        "idx_badgz/train-images-idx3-ubyte",
        &idx_images(2, 2, 2),
    );
    write(
        dir,
        "idx_badgz/train-labels-idx1-ubyte.gz",
        &[0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    cases.push(script(
        "idx_corrupt_gzip",
        r#"let d = mnist("idx_badgz");"#,
        err("idx_badgz/train-labels-idx1-ubyte.gz: corrupt gzip data"),
    ));
    let mut cut = gz(&idx_images(50, 28, 28));
    cut.truncate(cut.len() / 2);
    write(dir, "idx_cutgz/train-images-idx3-ubyte.gz", &cut);
    write(
        dir,
        "idx_cutgz/train-labels-idx1-ubyte",
        &idx_labels(&[0; 50]),
    );
    cases.push(script(
        "idx_truncated_gzip",
        r#"let d = mnist("idx_cutgz");"#,
        err("idx_cutgz/train-images-idx3-ubyte.gz: "),
    ));
    cases.push(script(
        "idx_not_a_dir",
        r#"let d = mnist("idx_trunc/train-labels-idx1-ubyte");"#,
        err("(it is a file)"),
    ));

    // NPY: wrong magic, truncated, giant shapes and headers, unsupported layouts, a directory.
    let f32s: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    write(dir, "npy/magic.npy", b"PK\x03\x04 not numpy");
    cases.push(script(
        "npy_wrong_magic",
        r#"let d = npy("npy/magic.npy");"#,
        err("npy/magic.npy: not an NPY file: wrong magic"),
    ));
    write(dir, "npy/short.npy", &npy("<f4", "(3, 2)", &f32s[..10]));
    cases.push(script(
        "npy_truncated",
        r#"let d = npy("npy/short.npy");"#,
        err("npy/short.npy: truncated NPY data: shape [3, 2] of '<f4' needs 24 bytes, found 10"),
    ));
    write(
        dir,
        "npy/giant.npy",
        &npy("<f4", "(4611686018427387904, 4611686018427387904)", &f32s),
    );
    cases.push(script(
        "npy_giant_shape",
        r#"let d = npy("npy/giant.npy");"#,
        err("npy/giant.npy: truncated NPY data: shape [4611686018427387904, 4611686018427387904]"),
    ));
    write(
        dir,
        "npy/overflow.npy",
        &npy("<f4", "(99999999999999999999999, 2)", &f32s),
    );
    cases.push(script(
        "npy_shape_overflow",
        r#"let d = npy("npy/overflow.npy");"#,
        err("npy/overflow.npy: bad NPY shape"),
    ));
    let mut hdr = b"\x93NUMPY\x02\x00".to_vec();
    hdr.extend_from_slice(&u32::MAX.to_le_bytes());
    hdr.extend_from_slice(b"{'descr': '<f4'");
    write(dir, "npy/hugeheader.npy", &hdr);
    cases.push(script(
        "npy_giant_header",
        r#"let d = npy("npy/hugeheader.npy");"#,
        err("npy/hugeheader.npy: the NPY header declares 4294967295 bytes of header"),
    ));
    let dims = vec!["1"; 40].join(", ");
    write(
        dir,
        "npy/dims.npy",
        &npy("<f4", &format!("({dims})"), &f32s[..4]),
    );
    cases.push(script(
        "npy_too_many_dims",
        r#"let d = npy("npy/dims.npy");"#,
        err("npy/dims.npy: the NPY shape has 40 dimensions"),
    ));
    let mut fortran = npy_header(1, "<f4", "(3, 2)", true);
    fortran.extend_from_slice(&f32s);
    write(dir, "npy/fortran.npy", &fortran);
    cases.push(script(
        "npy_fortran",
        r#"let d = npy("npy/fortran.npy");"#,
        err("npy/fortran.npy: Fortran-order arrays are not supported"),
    ));
    write(dir, "npy/int16.npy", &npy("<i2", "(3,)", &[0; 6]));
    cases.push(script(
        "npy_dtype",
        r#"let d = npy("npy/int16.npy");"#,
        err("npy/int16.npy: unsupported NPY dtype '<i2'"),
    ));
    let mut v9 = npy("<f4", "(3, 2)", &f32s);
    v9[6] = 9;
    write(dir, "npy/v9.npy", &v9);
    cases.push(script(
        "npy_version",
        r#"let d = npy("npy/v9.npy");"#,
        err("npy/v9.npy: unsupported NPY format version 9"),
    ));
    write(
        dir,
        "npy/nan.npy",
        &npy("<f4", "(2,)", &[0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x3f]),
    );
    cases.push(script(
        "npy_nan_values",
        r#"let d = npy("npy/nan.npy");"#,
        err("npy(npy/nan.npy): the array holds a non-finite value (NaN)"),
    ));
    write(dir, "npy/big.npy", &npy("<f4", "(4, 2)", &[0u8; 32]));
    cases.push(script(
        "npy_limit_reads_rows",
        r#"let d = npy("npy/big.npy", #{limit: 3}); print(d.len());"#,
        Expectation::Output("3".into()),
    ));
    cases.push(script(
        "npy_directory",
        r#"let d = npy("npy");"#,
        err("cannot read npy"),
    ));
    cases.push(script(
        "npy_empty_limit",
        r#"let d = npy("npy/big.npy", #{limit: 0});"#,
        err("data option `limit` must be >= 1, got 0"),
    ));
    write(dir, "npy/noperm.npy", &npy("<f4", "(3, 2)", &f32s));
    let noperm = dir.join("npy/noperm.npy");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&noperm, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    // Root reads it anyway; anyone else gets the operating system's refusal, with the name.
    cases.push(script(
        "npy_permission_denied",
        r#"let d = npy("npy/noperm.npy"); print(d.len());"#,
        Expectation::Either(
            "3".into(),
            "cannot read npy/noperm.npy: Permission denied".into(),
        ),
    ));

    // NPZ: a bomb (4 GB declared, inflated from a few hundred KB), not a zip, a missing key.
    {
        let f = std::fs::File::create(dir.join("bomb.npz")).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        z.start_file("x.npy", opts).unwrap();
        z.write_all(&npy_header(1, "<f4", "(100000, 10000)", false))
            .unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..256 {
            z.write_all(&chunk).unwrap();
        }
        z.finish().unwrap();
    }
    let mut c = script(
        "npz_bomb",
        r#"let d = npz("bomb.npz", "x");"#,
        err("bomb.npz[x]: an array of shape [100000, 10000] ('<f4') needs"),
    );
    c.args = vec!["--max-memory".into(), "2G".into()];
    cases.push(c);
    let mut c = script(
        "npz_bomb_limit",
        r#"let d = npz("bomb.npz", "x", #{limit: 5}); print(d.images.shape);"#,
        Expectation::Output("[5, 10000]".into()),
    );
    c.args = vec!["--max-memory".into(), "2G".into()];
    cases.push(c);
    cases.push(script("npz_truncated_entry", r#"let d = npz("bomb.npz", "x");"#,
        err("bomb.npz[x]: truncated NPY data: shape [100000, 10000] of '<f4' needs 4000000000 bytes, found 268435456")));
    write(dir, "notzip.npz", b"this is not a zip archive at all");
    cases.push(script(
        "npz_not_zip",
        r#"let d = npz("notzip.npz", "x");"#,
        err("notzip.npz: not an NPZ (zip) archive"),
    ));
    cases.push(script(
        "npz_missing_key",
        r#"let d = npz("bomb.npz", "y");"#,
        err("bomb.npz: no array `y` in the archive; it holds: x"),
    ));
    let mut zipped = std::fs::read(dir.join("bomb.npz")).unwrap();
    zipped.truncate(zipped.len() / 2);
    write(dir, "cut.npz", &zipped);
    cases.push(script(
        "npz_truncated_archive",
        r#"let d = npz("cut.npz", "x");"#,
        err("cut.npz: not an NPZ (zip) archive"),
    ));

    // CIFAR-10: a partial record, a label out of range.
    write(dir, "cifar_trunc/data_batch_1.bin", &[0; 3000]);
    cases.push(script(
        "cifar_truncated",
        r#"let d = cifar10("cifar_trunc");"#,
        err("cifar_trunc/data_batch_1.bin: truncated or not a CIFAR-10 batch: 3000 bytes"),
    ));
    let mut rec = vec![0u8; 2 * 3073];
    rec[3073] = 12;
    write(dir, "cifar_label/data_batch_1.bin", &rec);
    cases.push(script(
        "cifar_bad_label",
        r#"let d = cifar10("cifar_label");"#,
        err("cifar_label/data_batch_1.bin: record 1 has label 12"),
    ));
    cases.push(script(
        "cifar_limit",
        r#"let d = cifar10("cifar_label", #{limit: 1}); print(d.len());"#,
        Expectation::Output("1".into()),
    ));

    // Images: corrupt, and a PNG whose header claims 100000 × 100000 pixels.
    write(dir, "imgs_bad/a.png", b"\x89PNG\r\n\x1a\n garbage");
    cases.push(script(
        "image_corrupt",
        r#"let d = image_folder("imgs_bad", 8);"#,
        err("cannot read image imgs_bad/a.png"),
    ));
    write(dir, "imgs_huge/a.png", &png_claiming(100_000, 100_000));
    cases.push(script(
        "image_giant_header",
        r#"let d = image_folder("imgs_huge", 8);"#,
        err("cannot read image imgs_huge/a.png"),
    ));

    // Safetensors for net.load / opt.load: garbage, truncated, a giant header length.
    write(dir, "garbage.safetensors", b"garbage");
    cases.push(script(
        "net_load_garbage",
        r#"let n = linear(2, 2); n.load("garbage.safetensors");"#,
        err("garbage.safetensors"),
    ));
    let mut big = (u64::MAX / 2).to_le_bytes().to_vec();
    big.extend_from_slice(b"{}");
    write(dir, "bighdr.safetensors", &big);
    cases.push(script(
        "net_load_giant_header",
        r#"let n = linear(2, 2); n.load("bighdr.safetensors");"#,
        err("bighdr.safetensors"),
    ));
    cases.push(script(
        "opt_load_garbage",
        r#"let w = variable(ones([2])); let o = sgd(w, 0.1); o.load("garbage.safetensors");"#,
        err("garbage.safetensors"),
    ));

    // --resume from a broken run directory: the checkpoint is named, nothing runs.
    write(dir, "run_garbage/checkpoint.safetensors", b"garbage");
    write(
        dir,
        "run_garbage/config.json",
        b"{\"given\": {}, \"seed\": 1}",
    );
    let mut c = script(
        "resume_garbage_checkpoint",
        "print(1);",
        Expectation::Plain("run_garbage/checkpoint.safetensors is damaged or truncated".into()),
    );
    c.args = vec!["--resume".into(), "run_garbage".into()];
    cases.push(c);
    write(dir, "run_badconfig/checkpoint.safetensors", b"garbage");
    write(dir, "run_badconfig/config.json", b"{\"given\": ");
    let mut c = script(
        "resume_bad_config",
        "print(1);",
        Expectation::Plain("run_badconfig/config.json is not valid JSON".into()),
    );
    c.args = vec!["--resume".into(), "run_badconfig".into()];
    cases.push(c);
    cases
}

// ---------- the runner ----------

/// Runs one case in `dir`; returns a description of what went wrong, if anything.
fn run_case(dir: &Path, case: &Case) -> Option<String> {
    let file = format!("{}.rhai", case.name);
    std::fs::write(dir.join(&file), format!("{}\n", case.script)).unwrap();
    let out_path = dir.join(format!("{}.stdout", case.name));
    let err_path = dir.join(format!("{}.stderr", case.name));
    let mut cmd = common::command();
    cmd.current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .arg("run")
        .arg(&file);
    if !case.args.iter().any(|a| a == "--resume") {
        cmd.args(["--out", &format!("out_{}", case.name)]);
    }
    cmd.args(&case.args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Some(format!("{}: hung (killed after {TIMEOUT:?})", case.name));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    // Long messages are wrapped at 100 columns, continuing on lines that start with "  │ ".
    let stderr = std::fs::read_to_string(&err_path)
        .unwrap_or_default()
        .replace("\n  │ ", " ");
    let what = |why: &str| {
        Some(format!(
            "{}: {why} (exit {:?})\n--- script:\n{}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            case.name,
            status.code(),
            case.script
        ))
    };
    let Some(code) = status.code() else {
        return what("killed by a signal (an abort or a crash)");
    };
    if code == 101 || code == 134 {
        return what("exit code of a panic or an abort");
    }
    if let Some(m) = CRASH_MARKS
        .iter()
        .find(|m| stderr.contains(*m) || stdout.contains(*m))
    {
        return what(&format!("the output reports a crash ({m:?})"));
    }
    let located = stderr.contains(&format!("{file}:"));
    match &case.expect {
        Expectation::Error(text) => {
            if code != 1 {
                return what("expected exit code 1");
            }
            if !located {
                return what(&format!(
                    "the error does not name the script's line ({file}:LINE)"
                ));
            }
            if !stderr.contains(text.as_str()) {
                return what(&format!("the error does not say {text:?}"));
            }
        }
        Expectation::Plain(text) => {
            if code != 1 || !stderr.contains(text.as_str()) {
                return what(&format!("expected exit code 1 and {text:?}"));
            }
        }
        Expectation::Output(text) => {
            if code != 0 || !stdout.contains(text.as_str()) {
                return what(&format!("expected exit code 0 and {text:?} on stdout"));
            }
        }
        Expectation::Either(out, error) => {
            let ok = code == 0 && stdout.contains(out.as_str());
            let failed = code == 1 && located && stderr.contains(error.as_str());
            if !ok && !failed {
                return what(&format!(
                    "expected {out:?} on stdout or the error {error:?}"
                ));
            }
        }
    }
    None
}

/// Runs the cases on a few threads, each spawning the binary; returns the failures.
fn run_all(dir: &Path, cases: Vec<Case>) -> Vec<String> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8);
    let queue = Mutex::new(cases.into_iter().collect::<Vec<_>>());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop() else {
                    break;
                };
                if let Some(f) = run_case(dir, &case) {
                    failures.lock().unwrap().push(f);
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

#[test]
fn no_bad_script_or_data_file_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<Case> = SCRIPTS
        .iter()
        .map(|(name, text, args, expect)| Case {
            name: name.to_string(),
            script: text.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            expect: match expect {
                Error(t) => Expectation::Error(t.to_string()),
                Output(t) => Expectation::Output(t.to_string()),
            },
        })
        .collect();
    let names: std::collections::HashSet<&str> = SCRIPTS.iter().map(|c| c.0).collect();
    assert_eq!(names.len(), SCRIPTS.len(), "case names must be unique");
    cases.extend(data_cases(dir.path()));
    cases.extend(fuzz_regressions(dir.path()));
    let total = cases.len();
    assert!(total >= 200, "the corpus has {total} cases");
    let failures = run_all(dir.path(), cases);
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Inputs the fuzz targets (tests/fuzz.rs) found to break a loader once, as files and scripts.
fn fuzz_regressions(_dir: &Path) -> Vec<Case> {
    Vec::new()
}
