#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: builds ganscript with CUDA, runs the numeric tests
# on the GPU (the oracle in f64 and f32, the optimizers, the stdlib, the MAGAN/EBGAN boundaries,
# the device audit), a short run of each shipped script with --device cuda, and the speed
# benchmark beside PyTorch's on the GPU, then prints the ratio table.
#
#   scripts/gpu-check.sh                 # from the crate's directory
#   GPU_CHECK_CUDNN=1 scripts/gpu-check.sh   # with candle's cuDNN convolutions (needs cuDNN)
#   GPU_CHECK_DEVICE=cuda:1 scripts/gpu-check.sh
#   GPU_CHECK_SKIP_BENCH=1 scripts/gpu-check.sh
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_ONLY=runs GPU_CHECK_BIN=target/debug/ganscript scripts/gpu-check.sh
#                                        # a dry run of the script runs, on the CPU
#
# Needs nvcc on PATH (a CUDA toolkit), or falls back to ../shared/tools/cuda-toolchain.sh (a
# pinned CUDA 13.0 toolchain from PyPI wheels). The benchmark's PyTorch side needs python3 with
# torch (CUDA build). Tolerances on the GPU: the oracle's relative 1e-6 in f64, relative 1e-3 and
# absolute 1e-4 in f32 (tests/common/mod.rs, test_dtype); the optimizers' f64 trajectories 1e-6
# relative (oracle) and 1e-12 (PyTorch's rules in the test), f32 1e-6. Output lands in
# target/gpu-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${GPU_CHECK_DEVICE:-cuda}
OUT=target/gpu-check
mkdir -p "$OUT"
FEATURES=cuda
if [ "${GPU_CHECK_CUDNN:-0}" = 1 ]; then FEATURES=cudnn; fi
if [ "$DEVICE" = cpu ]; then FEATURES=""; fi
ONLY=${GPU_CHECK_ONLY:-all}         # all | runs
BIN=${GPU_CHECK_BIN:-target/release/ganscript}
FAILED=0

if [ "$ONLY" = all ]; then

echo "== the GPU"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
else
    echo "nvidia-smi not found: is this a GPU machine?" >&2
fi

echo "== the toolchain"
if [ -n "$FEATURES" ] && ! command -v nvcc >/dev/null; then
    if [ -f ../shared/tools/cuda-toolchain.sh ]; then
        cargo fetch
        # shellcheck disable=SC1091
        source ../shared/tools/cuda-toolchain.sh
        # The runtime libraries (.so.13) from the machine's PyTorch, as the toolchain script says.
        if LIBS=$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))' 2>/dev/null); then
            export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        fi
    else
        echo "no nvcc on PATH and no ../shared/tools/cuda-toolchain.sh: install a CUDA toolkit" >&2
        exit 1
    fi
fi
if [ -n "$FEATURES" ]; then nvcc --version | tail -1; fi

echo "== build (--release --features $FEATURES)"
cargo build --release --features "$FEATURES"

echo "== numeric tests on $DEVICE"
TESTS=(--test oracle --test optim --test stdlib --test energy_boundaries --test device_path)
for dtype in f64 f32; do
    echo "-- $dtype"
    GANSCRIPT_TEST_DEVICE=$DEVICE GANSCRIPT_TEST_DTYPE=$dtype \
        cargo test --release --features "$FEATURES" "${TESTS[@]}" 2>&1 | tee "$OUT/tests-$dtype.log" \
        | grep -E "^test result|FAILED|panicked" || true
    if grep -qE "FAILED|panicked" "$OUT/tests-$dtype.log"; then
        echo "numeric tests failed on $DEVICE in $dtype: see $OUT/tests-$dtype.log" >&2
        FAILED=1
    fi
done
fi

echo "== a short run of each shipped script on $DEVICE"
RUNS=$OUT/runs
rm -rf "$RUNS"
mkdir -p "$RUNS"
run() {  # run SCRIPT[@LABEL] KEY=VALUE...
    local name=${1/@/-} script=${1%@*}
    shift
    local args=()
    for s in "$@"; do args+=(--set "$s"); done
    if GANSCRIPT_PROGRESS=off "$BIN" run "scripts/$script.rhai" --device "$DEVICE" --seed 1 \
        --out "$RUNS/$name" "${args[@]}" >"$RUNS/$name.log" 2>&1; then
        echo "ok   $name: $(tail -1 "$RUNS/$name/metrics.jsonl" 2>/dev/null | cut -c1-150)"
    else
        echo "FAIL $name (see $RUNS/$name.log):"
        tail -5 "$RUNS/$name.log"
        FAILED=1
    fi
}
run magan epochs=1 pretrain_epochs=1 limit=256 batch=64
run ebgan epochs=1 limit=256 batch=64
run wgan_gp steps=3 n_critic=2 limit=64 batch=16 log_every=1
run maxmargin steps=3 limit=64 batch=16 log_every=1
run roth@mixture3d dataset=mixture3d steps=4 limit=512 batch=128 log_every=2 eval_samples=500
run roth steps=3 limit=64 batch=16 log_every=1
run tempered steps=3 K=2 limit=64 batch=16 log_every=1 lens_width=8 lens_blocks=1
run expected_margin n=256 iters=20 batch=32 eval=32 outer=3 inner=5 grid=50 penalties=none,l2-ls
run train_classifier epochs=1 batch=500 "out=$RUNS/classifier.safetensors"

if [ "$ONLY" != all ] || [ "${GPU_CHECK_SKIP_BENCH:-0}" = 1 ]; then exit "$FAILED"; fi

echo "== speed: ganscript and PyTorch on $DEVICE"
cargo bench --features "$FEATURES" --bench papers -- --device "$DEVICE" --rounds 2 | tee "$OUT/bench-ganscript.txt"
TORCH_DEVICE=$DEVICE
python3 ../shared/bench/torch_reference.py --device "$TORCH_DEVICE" | tee "$OUT/bench-torch.txt"
python3 - "$OUT/bench-ganscript.txt" "$OUT/bench-torch.txt" <<'EOF'
import json, sys
def lines(path):
    out = {}
    for l in open(path):
        l = l.strip()
        if l.startswith("{"):
            v = json.loads(l)
            out[v["config"]] = v
    return out
g, t = lines(sys.argv[1]), lines(sys.argv[2])
print(f"{'config':<20} {'rust API ms':>12} {'script ms':>10} {'pytorch ms':>11} {'script/pytorch':>15}")
for name in g:
    if name not in t:
        continue
    rust = g[name]["rust_median_ms"]
    script = g[name]["script_median_ms"]
    torch = t[name].get("median_ms") or t[name].get("ms")
    print(f"{name:<20} {rust:>12.2f} {script:>10.2f} {torch:>11.2f} {script / torch:>14.2f}x")
print("medians per training iteration; below 1x: the ganscript script is faster than PyTorch")
EOF
exit "$FAILED"
