#!/usr/bin/env bash
# Evaluates the runs of scripts/experiments/run.sh and draws the figures of EXPERIMENTS.md.
#
#   scripts/experiments/report.sh [RUNS_DIR] [FIGURES_DIR] [GROUP...]
#
# GROUP: magan roth maxmargin tempered (default: all four).
# RUNS_DIR default runs/experiments; FIGURES_DIR default scripts/experiments/figures.
# Writes FIGURES_DIR/*.png and RUNS_DIR/eval-*.txt (the tables quoted in EXPERIMENTS.md).
set -uo pipefail
GS=${GANSCRIPT:-target/release/ganscript}
R=${1:-runs/experiments}
F=${2:-scripts/experiments/figures}
shift 2 2>/dev/null || shift $#
WANT=" ${*:-magan roth maxmargin tempered} "
mkdir -p "$F"
have() { case $WANT in *" $2 "*) ls -d "$R"/$1 >/dev/null 2>&1 ;; *) return 1 ;; esac; }
runs() { for p in "$@"; do for d in "$R"/$p; do [ -f "$d/done" ] && echo "$d"; done; done; }

# 1. MAGAN vs EBGAN: energies, margin and convergence per epoch; sample quality.
if have 'magan-s*' magan; then
  M=$(runs 'magan-s*' 'ebgan-m30-s*' 'ebgan-m70-s*')
  "$GS" compare $M --mean-seeds --x epoch --y e_x,e_z --out "$F/magan_energies.png" \
    --title "real (e_x) and fake (e_z) energy per epoch" > "$R/eval-magan-energies.txt"
  "$GS" compare $M --mean-seeds --x epoch --y convergence --out "$F/magan_convergence.png" \
    --title "convergence measure E_x + |E_x - E_z|" > "$R/eval-magan-convergence.txt"
  "$GS" compare $(runs 'magan-s*') --x epoch --y margin --out "$F/magan_margin.png" \
    --title "MAGAN margin per epoch" > "$R/eval-magan-margin.txt"
  "$GS" eval $M > "$R/eval-magan.txt"
  cp "$R/magan-s1/samples_epoch10.png" "$F/magan_samples.png" 2>/dev/null
  cp "$R/ebgan-m30-s1/samples_epoch10.png" "$F/ebgan_m30_samples.png" 2>/dev/null
  cp "$R/ebgan-m70-s1/samples_epoch10.png" "$F/ebgan_m70_samples.png" 2>/dev/null
fi

# 2. Roth et al.'s 3-D mixture: modes captured over training, final scatter plots.
if have 'roth-*' roth; then
  M=$(runs 'roth-unreg-s*' 'roth-g0.1-s*' 'roth-g0.1-ann-s*')
  "$GS" compare $M --mean-seeds --y modes --out "$F/roth_modes.png" \
    --title "modes captured (of 7), mean over seeds" > "$R/eval-roth-modes.txt"
  "$GS" compare $M --mean-seeds --y high_quality --out "$F/roth_quality.png" \
    --title "fraction of samples within 3 std of a centre" > "$R/eval-roth-quality.txt"
  for s in $M; do "$GS" compare "$s" --y modes,high_quality; done > "$R/eval-roth-per-seed.txt"
  "$GS" eval $M > "$R/eval-roth.txt"
  for c in unreg g0.1 g0.1-ann; do cp "$R/roth-$c-s1/scatter_final.png" "$F/roth_${c}_scatter.png" 2>/dev/null; done
  cp "$R/roth-unreg-s1/real.png" "$F/roth_real.png" 2>/dev/null
fi

# 3. Maximum-margin gradient penalties: feature distance at equal steps.
if have 'mm-*' maxmargin; then
  M=$(runs 'mm-l2-ls-s*' 'mm-l2-hinge-s*' 'mm-linf-hinge-s*')
  "$GS" eval $M > "$R/eval-maxmargin.txt"
  "$GS" compare $M --mean-seeds --y loss_d --out "$F/maxmargin_loss_d.png" \
    --title "HingeGAN D loss (without penalty)" > "$R/eval-maxmargin-loss.txt"
  for c in l2-ls l2-hinge linf-hinge; do cp "$R/mm-$c-s1/samples_final.png" "$F/maxmargin_${c}_samples.png" 2>/dev/null; done
fi

# 4. Tempered lens: with and without, λ's schedule.
if have 'tan-*' tempered; then
  M=$(runs 'tan-lens-s*' 'tan-nolens-s*')
  "$GS" eval $M > "$R/eval-tempered.txt"
  "$GS" compare $(runs 'tan-lens-s1') --y lambda,lens_dist --out "$F/tempered_lambda.png" \
    --title "lens weight lambda and mean |x - L(x)|^2" > "$R/eval-tempered-lambda.txt"
  for c in lens nolens; do cp "$R/tan-$c-s1/samples_final.png" "$F/tempered_${c}_samples.png" 2>/dev/null; done
  cp "$R/tan-lens-s1/lensed_step250.png" "$F/tempered_lensed_step250.png" 2>/dev/null
fi
ls "$F"
