#!/usr/bin/env bash
# Integration test of `ganscript sweep --slurm` on a real Slurm: a one-node cluster on this
# machine (munged, slurmctld and slurmd with a minimal slurm.conf in a temporary directory),
# a 4-run sweep of tiny runs (scripts/roth.rhai on mixture3d, 40 steps, 2 settings × 2 seeds)
# submitted as an array job, then checks that every run directory is complete and that
# `--gather` tables every run. Installs Debian's slurm-wlm and munge when they are missing
# (as root). Stops the daemons it started, by their pids. A Slurm that cannot start fails the
# test. About a minute.
#
#   scripts/test-slurm.sh              # uses target/debug/ganscript (built if missing)
#   GANSCRIPT=path/to/ganscript scripts/test-slurm.sh
#
# Environment: SLURM_TEST_PORT (slurmctld's port, slurmd's is the next; default 16817),
# SLURM_TEST_KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

say() { echo "test-slurm: $*"; }
die() { echo "test-slurm: FAILED: $*" >&2; exit 1; }

if [ -n "${GANSCRIPT:-}" ]; then
  GS=$GANSCRIPT
else
  GS=target/debug/ganscript
  # A no-op when `cargo test` has built it already.
  cargo build --quiet --bin ganscript
fi
[ -x "$GS" ] || die "no ganscript binary at $GS"
GS=$(realpath "$GS")

# The packages.
need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need ${need[*]} (Debian's slurm-wlm and munge): run as root to install them"
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
for b in munged mungekey slurmctld slurmd sbatch squeue sinfo; do
  command -v "$b" >/dev/null 2>&1 || die "$b is missing after the install"
done

T=$(mktemp -d /tmp/ganscript-slurm.XXXXXX)
chmod 700 "$T"
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    for f in "$T"/munged.log "$T"/slurmctld.out "$T"/slurmd.out "$T"/slurmctld.log "$T"/slurmd.log "$T"/runs/logs/*; do
      [ -f "$f" ] && { echo "----- $f (last 30 lines)"; tail -n 30 "$f"; }
    done
  fi
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "test-slurm: files kept in $T"
  else
    rm -rf "$T"
  fi
  exit $rc
}
trap cleanup EXIT

# munge, with a key and a socket of its own.
mungekey -c -k "$T/munge.key"
munged -F --force --key-file="$T/munge.key" --socket="$T/munge.sock" \
  --pid-file="$T/munged.pid" --log-file="$T/munged.log" --seed-file="$T/munged.seed" \
  >"$T/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$T/munge.sock" ] && break; sleep 0.1; done
[ -S "$T/munge.sock" ] || die "munged did not start"
munge -S "$T/munge.sock" -n | unmunge -S "$T/munge.sock" >/dev/null || die "munge cannot encode and decode a credential"

# One node: this machine, with the CPUs and memory slurmd finds.
HOST=$(hostname -s)
NODE=$(slurmd -C | head -n 1)
case "$NODE" in NodeName=*) ;; *) die "slurmd -C printed no node line: $NODE" ;; esac
PORT=${SLURM_TEST_PORT:-16817}
mkdir -p "$T/state" "$T/spool"
cat > "$T/slurm.conf" <<EOF
ClusterName=ganscript-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
slurmctld -D -i -f "$SLURM_CONF" >"$T/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" >"$T/slurmd.out" 2>&1 &
PIDS+=($!)
say "waiting for the node"
state=""
for _ in $(seq 120); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || die "the Slurm node is not idle after 60 s (state: '${state:-none}')"
say "Slurm is up ($NODE)"

# The sweep: 2 settings x 2 seeds of a tiny run.
cat > "$T/sweep.toml" <<EOF
script = "$REPO/scripts/roth.rhai"
out = "runs"
seeds = [1, 2]

[set]
dataset = "mixture3d"
steps = 40
log_every = 20
grid_every = 40
eval_samples = 500

[grid]
gamma = [0.0, 0.1]
EOF
export GANSCRIPT_PROGRESS=plain
"$GS" sweep "$T/sweep.toml" --dry-run
submitted=$("$GS" sweep "$T/sweep.toml" --slurm --time 00:10:00 --cpus-per-run 1)
echo "$submitted"
JOB=$(echo "$submitted" | sed -n 's/^submitted job \([0-9]*\):.*/\1/p')
[ -n "$JOB" ] || die "no job id in: $submitted"
say "waiting for job $JOB"
for _ in $(seq 300); do
  [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] || die "job $JOB still queued or running after 300 s"

# Every run directory is complete, and every run was an array task of the job.
status=$("$GS" sweep "$T/sweep.toml" --status)
echo "$status"
n=0
for name in gamma=0.0-s1 gamma=0.1-s1 gamma=0.0-s2 gamma=0.1-s2; do
  d="$T/runs/$name"
  grep -q '"status": "ok"' "$d/config.json" || die "$d: config.json does not say ok"
  [ -s "$d/checkpoint.safetensors" ] || die "$d: no checkpoint"
  [ "$(grep -c '"step"' "$d/metrics.jsonl")" = 2 ] || die "$d: metrics.jsonl does not hold 2 rows"
  [ -s "$d/scatter_final.png" ] || die "$d: no final scatter plot"
  n=$((n + 1))
done
for i in 0 1 2 3; do
  [ -f "$T/runs/logs/slurm-${JOB}_$i.out" ] || die "no output of array task $i"
done
echo "$status" | grep -q '^4 runs: 4 done$' || die "--status does not report 4 finished runs"

# --gather tables them all, with the eval columns.
"$GS" sweep "$T/sweep.toml" --gather --eval-samples 500
csv="$T/runs/gather/runs.csv"
[ "$(tail -n +2 "$csv" | grep -c ',done,')" = 4 ] || die "$csv does not list 4 finished runs"
head -n 1 "$csv" | grep -q 'eval.modes_captured' || die "$csv has no eval columns"
[ "$(grep -c '^| gamma=' "$T/runs/gather/summary.md")" = 6 ] ||
  die "summary.md does not hold 2 configurations and 4 runs"
# Submitting again finds nothing to do.
"$GS" sweep "$T/sweep.toml" --slurm | grep -q 'nothing to submit' || die "a second --slurm submitted again"
say "$n runs finished under Slurm and gathered"

# A run killed mid-way (scancel: SIGTERM, then SIGKILL, as at a time limit) resumes from its
# last checkpoint when the sweep is submitted again.
cat > "$T/long.toml" <<EOF
script = "$REPO/scripts/roth.rhai"
out = "long"
seeds = [3]

[set]
dataset = "mixture3d"
steps = 600
log_every = 20
grid_every = 600
eval_samples = 500
EOF
job_of() { sed -n 's/^submitted job \([0-9]*\):.*/\1/p'; }
JOB=$("$GS" sweep "$T/long.toml" --slurm --cpus-per-run 1 | job_of)
[ -n "$JOB" ] || die "the long sweep was not submitted"
run="$T/long/roth-s3"
for _ in $(seq 600); do [ -f "$run/checkpoint.safetensors" ] && break; sleep 0.1; done
[ -f "$run/checkpoint.safetensors" ] || die "the long run wrote no checkpoint in 60 s"
"$GS" sweep "$T/long.toml" --status | grep -q "RUNNING (${JOB}_0)" ||
  die "--status does not show the running array task"
scancel "$JOB"
for _ in $(seq 300); do [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break; sleep 0.2; done
grep -q '"status": "running"' "$run/config.json" ||
  die "the cancelled run was not stopped mid-way (make it longer)"
say "cancelled job $JOB after $(grep -c '"step"' "$run/metrics.jsonl") logged rows; submitting again"
JOB=$("$GS" sweep "$T/long.toml" --slurm --cpus-per-run 1 | job_of)
[ -n "$JOB" ] || die "the long sweep was not submitted again"
for _ in $(seq 300); do [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break; sleep 1; done
grep -q '"status": "ok"' "$run/config.json" || die "the resubmitted run did not finish"
grep -q '^=== .* resume ' "$T/long/logs/roth-s3.log" || die "the resubmitted run did not resume"
steps=$(grep -o '"step":[0-9]*' "$run/metrics.jsonl" | cut -d: -f2 | tr '\n' ' ')
[ "$steps" = "$(seq -s ' ' 20 20 600) " ] ||
  die "the resumed run's metrics are not steps 20, 40, ..., 600 once each: $steps"
say "the cancelled run resumed from its checkpoint and finished"
say ok
