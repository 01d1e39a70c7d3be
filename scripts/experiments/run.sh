#!/usr/bin/env bash
# Regenerates every run behind EXPERIMENTS.md (about 3 hours on a 2-core CPU; one seed of everything is about 1.5 hours).
#
#   cargo build --release
#   scripts/experiments/run.sh [OUT_DIR] [GROUP...]     # OUT_DIR default: runs/experiments
#
# GROUP is any of magan roth maxmargin tempered (default: all), optionally with a seed
# suffix, e.g. `roth:1`. A run whose directory already holds a finished checkpoint is skipped,
# so the script can be stopped and started again. Then `scripts/experiments/report.sh OUT_DIR`
# evaluates the runs and draws the comparison figures.
set -euo pipefail
GS=${GANSCRIPT:-target/release/ganscript}
OUT=${1:-runs/experiments}
shift || true
GROUPS_=${*:-magan:1 roth:1 maxmargin:1 tempered:1 magan:2 roth:2 tempered:2 maxmargin:2}
export GANSCRIPT_PROGRESS=plain
mkdir -p "$OUT"

run() { # NAME SEED SCRIPT ARGS...
  local name=$1 seed=$2 script=$3; shift 3
  local dir="$OUT/$name-s$seed"
  if [ -f "$dir/done" ]; then echo "skip $dir (done)"; return; fi
  rm -rf "$dir"
  echo "== $dir: $script $* (seed $seed) $(date +%T)"
  local t0=$SECONDS
  if "$GS" run "$script" --seed "$seed" --out "$dir" "$@" > "$OUT/$name-s$seed.log" 2>&1; then
    echo "$((SECONDS - t0))" > "$dir/done"
    echo "   finished in $((SECONDS - t0)) s"
  else
    echo "   FAILED after $((SECONDS - t0)) s: see $OUT/$name-s$seed.log"
  fi
}

for g in $GROUPS_; do
  seed=${g#*:}; [ "$seed" = "$g" ] && seed=1
  case ${g%%:*} in
    magan)  # Experiment 1: MAGAN vs EBGAN with fixed margins, 10 epochs (2 of them D pre-training)
      run magan      "$seed" scripts/magan.rhai --set epochs=10
      run ebgan-m30  "$seed" scripts/ebgan.rhai --set epochs=10 --set margin=30
      run ebgan-m70  "$seed" scripts/ebgan.rhai --set epochs=10 --set margin=70 ;;
    roth)   # Experiment 2: 7 Gaussians in 3-D, 5000 steps of batch 512
      run roth-unreg    "$seed" scripts/roth.rhai --set data=mixture3d --set gamma=0.0 --set anneal=false
      run roth-g0.1     "$seed" scripts/roth.rhai --set data=mixture3d --set gamma=0.1 --set anneal=false
      run roth-g0.1-ann "$seed" scripts/roth.rhai --set data=mixture3d --set gamma=0.1 --set anneal=true ;;
    maxmargin) # Experiment 3: HingeGAN, DCGAN 32×32, batch 32, 400 generator steps
      run mm-l2-ls      "$seed" scripts/maxmargin.rhai --set steps=400 --set norm=l2   --set penalty=ls    --set lambda=20 --set grid_every=200
      run mm-l2-hinge   "$seed" scripts/maxmargin.rhai --set steps=400 --set norm=l2   --set penalty=hinge --set lambda=20 --set grid_every=200
      run mm-linf-hinge "$seed" scripts/maxmargin.rhai --set steps=400 --set norm=linf --set penalty=hinge --set lambda=20 --set grid_every=200 ;;
    tempered) # Experiment 4: DCGAN 32×32 with and without a 3-block lens, 500 steps, K = 250
      run tan-lens   "$seed" scripts/tempered.rhai --set steps=500 --set K=250 --set lens_blocks=3 --set lens_width=16 --set grid_every=250
      run tan-nolens "$seed" scripts/tempered.rhai --set steps=500 --set lens=false --set grid_every=250 ;;
    *) echo "unknown group $g" >&2; exit 2 ;;
  esac
done
