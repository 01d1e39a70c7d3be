#!/usr/bin/env bash
# Regenerates every run behind EXPERIMENTS.md. Restartable: a finished run (its directory holds
# `done`) is skipped, an interrupted one resumes from its last checkpoint.
#
#   cargo build --release
#   scripts/experiments/run.sh [OUT_DIR] [GROUP...]     # OUT_DIR default: runs/experiments
#
# GROUP: margin magan roth tempered maxmargin roth5 (default: all, in this order), optionally with seeds,
# e.g. `roth:1,2`. JOBS (default 2) runs that many at a time, each on one thread
# (CANDLE_NUM_THREADS=1: on 2 cores, two single-threaded runs finish sooner than two sharing
# both cores, and far sooner than anything sharing cores with a build). Every run's own time is
# in its directory's `done`; the total is printed at the end.
set -uo pipefail
GS=${GANSCRIPT:-target/release/ganscript}
OUT=${1:-runs/experiments}
shift || true
GROUPS_=${*:-margin magan roth tempered maxmargin roth5}
JOBS=${JOBS:-2}
export GANSCRIPT_PROGRESS=plain CANDLE_NUM_THREADS=${CANDLE_NUM_THREADS:-1}
mkdir -p "$OUT"
T0=$SECONDS

run() { # NAME SEED SCRIPT ARGS...
  local name=$1 seed=$2 script=$3; shift 3
  local dir="$OUT/$name-s$seed" log="$OUT/$name-s$seed.log"
  if [ -f "$dir/done" ]; then echo "skip $dir (done)"; return; fi
  local how=(--out "$dir")
  if [ -f "$dir/checkpoint.safetensors" ]; then how=(--resume "$dir"); fi
  echo "== $dir: $script $* (seed $seed, ${how[0]}) $(date +%T)"
  local t0=$SECONDS
  if "$GS" run "$script" --seed "$seed" "${how[@]}" "$@" >> "$log" 2>&1; then
    echo "$((SECONDS - t0))" > "$dir/done"
    echo "   $dir finished in $((SECONDS - t0)) s"
  else
    echo "   $dir FAILED after $((SECONDS - t0)) s: see $log"
  fi
}

# Runs at most $JOBS at a time.
queue() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done; run "$@" & }

for g in $GROUPS_; do
  seeds=${g#*:}; [ "$seeds" = "$g" ] && seeds=""
  name=${g%%:*}
  case $name in
    margin)   # Table 1 of the max-margin paper: expected margins of penalised classifiers
      for s in ${seeds:-1 2 3}; do
        queue margin-lam1  "$s" scripts/expected_margin.rhai --set lambda=1.0
        queue margin-lam20 "$s" scripts/expected_margin.rhai --set lambda=20.0
      done ;;
    magan)    # MAGAN vs EBGAN (fixed m = 30), 50 epochs; MAGAN with the official Adamax
      for s in ${seeds:-1 2 3}; do
        queue magan          "$s" scripts/magan.rhai --set epochs=50
        queue magan-nobc     "$s" scripts/magan.rhai --set epochs=50 --set bias_correction=false
        queue ebgan-m30      "$s" scripts/ebgan.rhai --set epochs=50 --set margin=30
      done ;;
    roth)     # Roth et al. 3-D mixture, the official setup, 100k generator steps
      R=(scripts/roth.rhai --set dataset=mixture3d --set setup=official --set steps=100000)
      for s in ${seeds:-1 2 3}; do
        queue roth-unreg      "$s" "${R[@]}" --set gamma=0.0
        queue roth-g0.1       "$s" "${R[@]}" --set gamma=0.1
        queue roth-g0.1-ann   "$s" "${R[@]}" --set gamma=0.1 --set anneal=true
        queue roth-noise-ann  "$s" "${R[@]}" --set gamma=0.0 --set noise_sigma=0.316 --set anneal=true
      done ;;
    roth5)    # the same with 5 D steps per G step (the paper's Fig. 6), 20k generator steps
      R=(scripts/roth.rhai --set dataset=mixture3d --set setup=official --set d_steps=5 --set steps=20000 --set log_every=200 --set grid_every=5000)
      for s in ${seeds:-1 2 3}; do
        queue roth5-unreg "$s" "${R[@]}" --set gamma=0.0
        queue roth5-g0.1  "$s" "${R[@]}" --set gamma=0.1
      done ;;
    maxmargin) # HingeGAN, narrow DCGAN 32×32 (width 16), 10k generator steps, λ = 20
      M=(scripts/maxmargin.rhai --set steps=10000 --set width=16 --set lambda=20 --set grid_every=2500 --set log_every=100)
      for s in ${seeds:-1 2 3}; do
        queue mm-none       "$s" "${M[@]}" --set penalty=none
        queue mm-l2-ls      "$s" "${M[@]}" --set norm=l2   --set penalty=ls
        queue mm-l2-hinge   "$s" "${M[@]}" --set norm=l2   --set penalty=hinge
        queue mm-linf-hinge "$s" "${M[@]}" --set norm=linf --set penalty=hinge
        queue mm-l1-hinge   "$s" "${M[@]}" --set norm=l1   --set penalty=hinge
      done ;;
    tempered) # LSGAN with and without the lens, same initialisation, 5 seeds, 4000 steps, K = 1500
      T=(scripts/tempered.rhai --set variant=lsgan --set width=16 --set lens_width=8 --set lens_blocks=2 --set steps=4000 --set K=1500 --set grid_every=1000 --set log_every=100)
      for s in ${seeds:-1 2 3 4 5}; do
        queue tan-lens   "$s" "${T[@]}"
        queue tan-nolens "$s" "${T[@]}" --set lens=false
      done ;;
    *) echo "unknown group $g" >&2; exit 2 ;;
  esac
done
wait
echo "all done in $((SECONDS - T0)) s"
