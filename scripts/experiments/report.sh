#!/usr/bin/env bash
# Evaluates the finished runs of scripts/experiments/run.sh, draws the figures of EXPERIMENTS.md
# and writes the pre-registered statistics.
#
#   scripts/experiments/report.sh [RUNS_DIR] [FIGURES_DIR]
#
# RUNS_DIR default runs/experiments; FIGURES_DIR default scripts/experiments/figures.
# Writes RUNS_DIR/eval-<group>.json (`ganscript eval --json`, 5,000 samples per run),
# RUNS_DIR/summary.md (scripts/experiments/summarize.py) and FIGURES_DIR/*.png.
set -uo pipefail
GS=${GANSCRIPT:-target/release/ganscript}
R=${1:-runs/experiments}
F=${2:-scripts/experiments/figures}
mkdir -p "$F"
# Finished runs: config.json says "ok" (runs of `ganscript sweep`; older runs of run.sh also left
# a `done` file).
finished() { [ -f "$1/done" ] || grep -q '"status": "ok"' "$1/config.json" 2>/dev/null; }
runs() { for p in "$@"; do for d in "$R"/$p; do finished "$d" && echo "$d"; done; done; }
ev() { # GROUP RUNS...: eval each run on its own (no cross-test), 5,000 samples
  local g=$1; shift
  [ $# -gt 0 ] || return 0
  python3 - "$R/eval-$g.json" "$@" <<'PY'
import json, subprocess, sys, os
out, runs = sys.argv[1], sys.argv[2:]
gs = os.environ.get("GANSCRIPT", "target/release/ganscript")
res = []
for r in runs:
    p = subprocess.run([gs, "eval", r, "--samples", "5000", "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"eval {r} failed: {p.stderr}", file=sys.stderr); continue
    res += json.loads(p.stdout)["runs"]
json.dump({"runs": res}, open(out, "w"), indent=1)
PY
}
cp1() { [ -f "$1" ] && cp "$1" "$2"; }

# MAGAN against EBGAN
M=$(runs 'magan-s*' 'magan-nobc-s*' 'ebgan-m30-s*')
if [ -n "$M" ]; then
  ev magan $M
  "$GS" compare $M --mean-seeds --x epoch --y e_x,e_z --out "$F/magan_energies.png" --title "real (e_x) and fake (e_z) energy per epoch, mean of seeds" > "$R/compare-magan-energies.txt"
  "$GS" compare $(runs 'magan-s*' 'magan-nobc-s*') --x epoch --y margin --out "$F/magan_margin.png" --title "MAGAN's margin per epoch" > "$R/compare-magan-margin.txt"
  "$GS" compare $M --mean-seeds --x epoch --y convergence --out "$F/magan_convergence.png" --title "convergence measure E_x + |E_x - E_z|" > "$R/compare-magan-convergence.txt"
  for c in magan ebgan-m30; do cp1 "$R/$c-s1/samples_epoch50.png" "$F/${c}_samples.png"; done
fi

# Roth et al.
for g in roth roth5; do
  M=$(runs "$g-*-s*")
  [ -n "$M" ] || continue
  ev $g $M
  "$GS" compare $M --mean-seeds --y modes --out "$F/${g}_modes.png" --title "modes captured (of 7), mean of seeds" > "$R/compare-$g-modes.txt"
  "$GS" compare $M --mean-seeds --y high_quality --out "$F/${g}_quality.png" --title "fraction of samples within 3 std of a centre, mean of seeds" > "$R/compare-$g-quality.txt"
  for d in $(runs "$g-*-s1"); do c=$(basename "$d"); cp1 "$d/scatter_final.png" "$F/${c%-s1}_scatter.png"; done
done
cp1 "$R/roth-unreg-s1/real.png" "$F/roth_real.png"

# Maximum-margin GANs
M=$(runs 'mm-*-s*')
if [ -n "$M" ]; then
  ev maxmargin $M
  "$GS" compare $M --mean-seeds --y loss_d --out "$F/maxmargin_loss_d.png" --title "HingeGAN D loss (without the penalty), mean of seeds" > "$R/compare-maxmargin-loss.txt"
  for d in $(runs 'mm-*-s1'); do c=$(basename "$d"); cp1 "$d/samples_final.png" "$F/${c%-s1}_samples.png"; done
fi

# Tempered lens
M=$(runs 'tan-*-s*')
if [ -n "$M" ]; then
  ev tempered $M
  "$GS" compare $(runs 'tan-lens-s*') --mean-seeds --y lambda,lens_dist --out "$F/tempered_lambda.png" --title "lens weight lambda and mean |x - L(x)|^2" > "$R/compare-tempered-lambda.txt"
  "$GS" compare $M --mean-seeds --y loss_d --out "$F/tempered_loss_d.png" --title "LSGAN D loss, with and without the lens" > "$R/compare-tempered-loss.txt"
  for d in $(runs 'tan-*-s*'); do c=$(basename "$d"); cp1 "$d/samples_final.png" "$F/${c}_samples.png"; done
  cp1 "$R/tan-lens-s1/lensed_step1000.png" "$F/tempered_lensed_step1000.png"
fi

python3 "$(dirname "$0")/summarize.py" "$R" > "$R/summary.md"
echo "wrote $R/summary.md and the figures in $F"
