//! `ganscript sweep FILE --slurm`: an `sbatch` array job, one task per unfinished run. Task
//! `i` runs `ganscript sweep FILE --run-index i`, entry `i` of the `--dry-run` listing (the
//! task checks the listing's fingerprint, so a sweep file edited after submission is refused
//! instead of running the wrong entry). A run stopped at its time limit resumes from its last
//! checkpoint when the sweep is submitted again; finished runs are left out of the array.
//!
//! The script is written to `<root>/sweep.sbatch`; each submission's job id is appended to
//! `<root>/slurm-jobs.tsv`, which `--status` reads to ask `squeue` and `sacct`.

use super::spec::{SlurmDefaults, Sweep};
use super::state::{self, Action};
use crate::errors::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The resources and options of the array job.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub gpus_per_run: Option<u32>,
    pub cpus_per_run: Option<u32>,
    pub mem: Option<String>,
    pub sbatch_args: Vec<String>,
    /// At most this many array tasks at once (`--array=...%N`).
    pub max_running: Option<usize>,
}

impl SlurmOptions {
    /// These options over the sweep file's `[slurm]` defaults.
    pub fn over(self, d: &SlurmDefaults) -> SlurmOptions {
        let mut sbatch_args = d.sbatch_args.clone();
        sbatch_args.extend(self.sbatch_args);
        SlurmOptions {
            partition: self.partition.or_else(|| d.partition.clone()),
            time: self.time.or_else(|| d.time.clone()),
            gpus_per_run: self.gpus_per_run.or(d.gpus_per_run),
            cpus_per_run: self.cpus_per_run.or(d.cpus_per_run),
            mem: self.mem.or_else(|| d.mem.clone()),
            sbatch_args,
            max_running: self.max_running,
        }
    }
}

/// Indices as Slurm writes array ranges: `0-3,5,7-8`.
pub fn array_spec(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

/// The indices of a Slurm range list (`0-3,5` or `[0-3,5%2]`).
pub fn parse_ranges(text: &str) -> Vec<usize> {
    let t = text.trim_start_matches('[').trim_end_matches(']');
    let t = t.split('%').next().unwrap_or("");
    let mut out = Vec::new();
    for part in t.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.push(i);
                }
            }
        }
    }
    out
}

/// `text` quoted for bash.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The sbatch script for the runs `indices` of `sweep`, run by `exe` on `device`, from `cwd`.
pub fn script(
    sweep: &Sweep,
    opts: &SlurmOptions,
    exe: &Path,
    device: &str,
    indices: &[usize],
    cwd: &Path,
) -> String {
    let file = sweep.file.display().to_string();
    let stem = sweep
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sweep".into());
    let mut array = array_spec(indices);
    if let Some(n) = opts.max_running {
        array = format!("{array}%{n}");
    }
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# Written by `ganscript sweep {file} --slurm`: one array task per run; task i runs entry i\n\
         # of `ganscript sweep {file} --dry-run`. Submit the sweep again to resume runs that were\n\
         # stopped (at their time limit, say) from their checkpoints.\n"
    ));
    let mut directive = |d: String| s.push_str(&format!("#SBATCH {d}\n"));
    directive(format!("--job-name=gs-{stem}"));
    directive(format!("--array={array}"));
    directive(format!(
        "--output={}",
        sweep.root.join("logs").join("slurm-%A_%a.out").display()
    ));
    directive(format!("--chdir={}", cwd.display()));
    directive("--ntasks=1".into());
    if let Some(c) = opts.cpus_per_run {
        directive(format!("--cpus-per-task={c}"));
    }
    if let Some(p) = &opts.partition {
        directive(format!("--partition={p}"));
    }
    if let Some(t) = &opts.time {
        directive(format!("--time={t}"));
    }
    if let Some(m) = &opts.mem {
        directive(format!("--mem={m}"));
    }
    if let Some(g) = opts.gpus_per_run.filter(|&g| g > 0) {
        directive(format!("--gres=gpu:{g}"));
    }
    for a in &opts.sbatch_args {
        directive(a.clone());
    }
    s.push_str("\n# candle's thread pool: the CPUs Slurm gave the task.\n");
    s.push_str("if [ -n \"${SLURM_CPUS_PER_TASK:-}\" ]; then export CANDLE_NUM_THREADS=$SLURM_CPUS_PER_TASK; fi\n");
    s.push_str("export GANSCRIPT_PROGRESS=plain\n");
    s.push_str(&format!(
        "exec {} sweep {} --run-index \"$SLURM_ARRAY_TASK_ID\" --listing {} --device {}\n",
        quote(&exe.display().to_string()),
        quote(&file),
        sweep.fingerprint(),
        quote(device)
    ));
    s
}

/// The script's path.
pub fn script_path(sweep: &Sweep) -> PathBuf {
    sweep.root.join("sweep.sbatch")
}

/// The file of submitted job ids.
pub fn jobs_path(sweep: &Sweep) -> PathBuf {
    sweep.root.join("slurm-jobs.tsv")
}

/// Writes the script for the unfinished runs and, unless `print_only`, submits it. Returns
/// what to tell the user.
pub fn submit(
    sweep: &Sweep,
    opts: &SlurmOptions,
    exe: &Path,
    device: &str,
    print_only: bool,
) -> Result<String, Error> {
    let mut indices = Vec::new();
    for run in &sweep.runs {
        match state::action(run)? {
            Action::Skip => {}
            _ => indices.push(run.index),
        }
    }
    if indices.is_empty() {
        return Ok(format!(
            "all {} runs are finished: nothing to submit",
            sweep.runs.len()
        ));
    }
    let cwd = std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?;
    let text = script(sweep, opts, exe, device, &indices, &cwd);
    std::fs::create_dir_all(sweep.root.join("logs"))
        .map_err(|e| format!("cannot create {}: {e}", sweep.root.join("logs").display()))?;
    let path = script_path(sweep);
    crate::io::write_atomically(&path, text.as_bytes())?;
    if print_only {
        return Ok(format!(
            "{text}\nwrote {} ({} of {} runs; not submitted)",
            path.display(),
            indices.len(),
            sweep.runs.len()
        ));
    }
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .map_err(|e| {
            format!(
                "cannot run sbatch ({e}): is Slurm installed here? `--print-only` writes {} without submitting it",
                path.display()
            )
        })?;
    if !out.status.success() {
        return Err(Error::Msg(format!(
            "sbatch {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let job = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::Msg(format!(
            "sbatch printed no job id: {:?}",
            stdout.trim()
        )));
    }
    let mut jobs = std::fs::read_to_string(jobs_path(sweep)).unwrap_or_default();
    jobs.push_str(&format!(
        "{job}\t{}\t{}\t{}\n",
        sweep.fingerprint(),
        array_spec(&indices),
        crate::run::iso8601(std::time::SystemTime::now())
    ));
    crate::io::write_atomically(&jobs_path(sweep), jobs.as_bytes())?;
    Ok(format!(
        "submitted job {job}: {} array tasks (runs {}) from {}; `ganscript sweep {} --status` follows them",
        indices.len(),
        array_spec(&indices),
        path.display(),
        sweep.file.display()
    ))
}

/// The submitted job ids with their array indices, oldest first (only those of this listing).
pub fn submitted(sweep: &Sweep) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(jobs_path(sweep)).unwrap_or_default();
    let fp = sweep.fingerprint();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 3 && f[1] == fp).then(|| (f[0].to_string(), parse_ranges(f[2])))
        })
        .collect()
}

/// Adds `JOB_INDEX STATE` lines (`JOB_[0-3]` ranges too) of `text` for `job` to `states`.
fn read_states(text: &str, job: &str, states: &mut BTreeMap<usize, String>) {
    for line in text.lines() {
        let mut f = line.split(['|', ' ']).filter(|s| !s.is_empty());
        let (Some(id), Some(st)) = (f.next(), f.next()) else {
            continue;
        };
        let Some((j, idx)) = id.split_once('_') else {
            continue;
        };
        if j != job {
            continue;
        }
        for i in parse_ranges(idx) {
            states.insert(i, st.to_string());
        }
    }
}

/// Each run's Slurm state (by index) from `squeue` (live) and `sacct` (finished), where they
/// are available; the latest submission wins.
pub fn states(sweep: &Sweep) -> BTreeMap<usize, String> {
    let mut out = BTreeMap::new();
    for (job, indices) in submitted(sweep) {
        let mut st = BTreeMap::new();
        if let Ok(o) = Command::new("sacct")
            .args(["-n", "-P", "-X", "-j", &job, "-o", "JobID,State"])
            .output()
        {
            read_states(&String::from_utf8_lossy(&o.stdout), &job, &mut st);
        }
        if let Ok(o) = Command::new("squeue")
            .args(["-h", "-r", "-j", &job, "-o", "%i|%T"])
            .output()
        {
            read_states(&String::from_utf8_lossy(&o.stdout), &job, &mut st);
        }
        for i in indices {
            if let Some(s) = st.remove(&i) {
                out.insert(i, format!("{s} ({job}_{i})"));
            }
        }
    }
    out
}
