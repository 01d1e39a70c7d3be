#!/usr/bin/env bash
# Regenerates every run behind EXPERIMENTS.md: one `ganscript sweep` per group, each described by
# scripts/experiments/GROUP.toml (script, settings, cases, seeds; runs go to runs/experiments).
# Restartable: a finished run is skipped, an interrupted one resumes from its last checkpoint.
#
#   cargo build --release
#   scripts/experiments/run.sh [GROUP...]     # GROUP: margin magan roth tempered maxmargin roth5
#   ganscript sweep scripts/experiments/roth.toml --status     # where a group stands
#
# JOBS (default 2) runs that many at a time, each on one thread (on 2 cores, two single-threaded
# runs finish sooner than two sharing both cores). To run other seeds, edit the group's `seeds`.
# On a Slurm cluster: `ganscript sweep scripts/experiments/GROUP.toml --slurm --cpus-per-run 1`.
set -uo pipefail
cd "$(dirname "$0")/../.."
GS=${GANSCRIPT:-target/release/ganscript}
JOBS=${JOBS:-2}
export GANSCRIPT_PROGRESS=plain
status=0
for g in ${*:-margin magan roth tempered maxmargin roth5}; do
  f=scripts/experiments/$g.toml
  [ -f "$f" ] || { echo "unknown group $g (no $f)" >&2; exit 2; }
  "$GS" sweep "$f" --jobs "$JOBS" --threads 1 || status=1
done
exit $status
