//! `ganscript sweep FILE --gather`: one table of every run's last metrics (the last value of
//! each key in its `metrics.jsonl`) and its `ganscript eval` results (columns `eval.<metric>`),
//! and one of each configuration's mean ± sd over its seeds (the sample standard deviation,
//! n − 1 in the denominator), written into `<root>/gather/`:
//!
//! - `runs.csv`: one row per run (run, config, seed, status, the varied settings, the metrics);
//! - `summary.csv`: one row per configuration (`<metric>_mean`, `<metric>_sd`, `<metric>_n`);
//! - `summary.md`: both as Markdown tables, the summary first (also printed);
//! - `<metric>.png` for each `--plot` metric: the metric over `--x`, one line per
//!   configuration (the mean over its seeds), as `ganscript compare --mean-seeds` draws it.
//!
//! Only finished runs (config.json status "ok") enter the means and are evaluated; the others
//! are listed with their status.

use super::spec::{Run, Sweep};
use super::state;
use crate::errors::Error;
use crate::run::progress::fmt_num;
use std::path::{Path, PathBuf};

/// What to gather.
#[derive(Clone, Debug)]
pub struct GatherOptions {
    /// Evaluate each finished run's checkpoint as `ganscript eval` does.
    pub eval: bool,
    pub eval_samples: usize,
    /// Name of the generator net in the checkpoints.
    pub generator: String,
    /// Metrics to plot.
    pub plots: Vec<String>,
    /// The plots' x axis.
    pub x: String,
}

/// One run's row.
#[derive(Clone, Debug)]
pub struct Row {
    pub index: usize,
    pub status: String,
    pub values: Vec<(String, f64)>,
}

impl Row {
    fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// The gathered tables.
#[derive(Clone, Debug)]
pub struct Gathered {
    /// The metric columns: the logged keys in order of first appearance, then `eval.*`.
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
}

/// The mean and the sample standard deviation (None for fewer than two values).
pub fn mean_sd(xs: &[f64]) -> (f64, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, None);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, Some(var.sqrt()))
}

fn status_of(run: &Run) -> String {
    match state::state(&run.dir) {
        state::RunState::New => "not started".into(),
        s => s.word().to_string(),
    }
}

/// Reads every run's metrics (and evaluates the finished ones if asked).
pub fn collect(sweep: &Sweep, opts: &GatherOptions) -> Gathered {
    let mut columns: Vec<String> = Vec::new();
    let mut eval_columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut warnings = Vec::new();
    for run in &sweep.runs {
        let status = status_of(run);
        let mut values = state::last_metrics(&run.dir);
        for (k, _) in &values {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
        let has_checkpoint = run.dir.join(crate::checkpoint::FILE_NAME).exists();
        if opts.eval && status == "done" && has_checkpoint {
            match crate::eval::eval_run(&run.dir, opts.eval_samples, 0, &opts.generator) {
                Ok(e) => {
                    if let Some(obj) = e.metrics.as_object() {
                        for (k, v) in obj {
                            if matches!(k.as_str(), "run" | "samples" | "reference_samples") {
                                continue;
                            }
                            if let Some(x) = v.as_f64() {
                                let key = format!("eval.{k}");
                                if !eval_columns.contains(&key) {
                                    eval_columns.push(key.clone());
                                }
                                values.push((key, x));
                            }
                        }
                    }
                }
                Err(e) => warnings.push(format!("{}: not evaluated: {e}", run.name)),
            }
        }
        rows.push(Row {
            index: run.index,
            status,
            values,
        });
    }
    // The usual x axes first.
    columns.sort_by_key(|c| match c.as_str() {
        "epoch" => 0,
        "step" => 1,
        _ => 2,
    });
    columns.extend(eval_columns);
    Gathered {
        columns,
        rows,
        warnings,
    }
}

/// One configuration's summary: its runs, how many are finished, and each column's
/// (mean, sd, values) over the finished ones.
pub struct Summary<'a> {
    pub config: String,
    pub first: &'a Run,
    pub runs: usize,
    pub finished: usize,
    pub stats: Vec<Option<(f64, Option<f64>, usize)>>,
}

/// The per-configuration summaries of `g`.
pub fn summarize<'a>(sweep: &'a Sweep, g: &Gathered) -> Vec<Summary<'a>> {
    sweep
        .configs()
        .into_iter()
        .map(|(config, runs)| {
            let done: Vec<&Row> = runs
                .iter()
                .map(|r| &g.rows[r.index])
                .filter(|row| row.status == "done")
                .collect();
            let stats = g
                .columns
                .iter()
                .map(|c| {
                    let xs: Vec<f64> = done.iter().filter_map(|r| r.get(c)).collect();
                    if xs.is_empty() {
                        None
                    } else {
                        let (m, s) = mean_sd(&xs);
                        Some((m, s, xs.len()))
                    }
                })
                .collect();
            Summary {
                config,
                first: runs[0],
                runs: runs.len(),
                finished: done.len(),
                stats,
            }
        })
        .collect()
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        format!("{x}")
    }
}

fn varied_value(run: &Run, key: &str) -> String {
    run.varied
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn csv_bytes(header: Vec<String>, rows: Vec<Vec<String>>) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(&r).map_err(|e| e.to_string())?;
    }
    Ok(w.into_inner().map_err(|e| e.to_string())?)
}

/// `runs.csv`.
pub fn runs_csv(sweep: &Sweep, g: &Gathered) -> Result<Vec<u8>, Error> {
    let varied = sweep.varied_keys();
    let mut header: Vec<String> = ["run", "config", "seed", "status"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(varied.iter().cloned());
    header.extend(g.columns.iter().cloned());
    let rows = g
        .rows
        .iter()
        .map(|row| {
            let run = &sweep.runs[row.index];
            let mut r = vec![
                run.name.clone(),
                run.config.clone(),
                run.seed.to_string(),
                row.status.clone(),
            ];
            r.extend(varied.iter().map(|k| varied_value(run, k)));
            r.extend(
                g.columns
                    .iter()
                    .map(|c| row.get(c).map(num).unwrap_or_default()),
            );
            r
        })
        .collect();
    csv_bytes(header, rows)
}

/// `summary.csv`.
pub fn summary_csv(sweep: &Sweep, g: &Gathered) -> Result<Vec<u8>, Error> {
    let varied = sweep.varied_keys();
    let mut header: Vec<String> = vec!["config".into()];
    header.extend(varied.iter().cloned());
    header.push("runs".into());
    header.push("finished".into());
    for c in &g.columns {
        header.push(format!("{c}_mean"));
        header.push(format!("{c}_sd"));
        header.push(format!("{c}_n"));
    }
    let rows = summarize(sweep, g)
        .into_iter()
        .map(|s| {
            let mut r = vec![s.config.clone()];
            r.extend(varied.iter().map(|k| varied_value(s.first, k)));
            r.push(s.runs.to_string());
            r.push(s.finished.to_string());
            for st in &s.stats {
                match st {
                    Some((m, sd, n)) => {
                        r.push(num(*m));
                        r.push(sd.map(num).unwrap_or_default());
                        r.push(n.to_string());
                    }
                    None => r.extend([String::new(), String::new(), "0".into()]),
                }
            }
            r
        })
        .collect();
    csv_bytes(header, rows)
}

fn md_num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else {
        fmt_num(x)
    }
}

fn md_table(header: &[String], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let sep: String = (0..header.len())
        .map(|i| if i == 0 { " --- |" } else { " ---: |" })
        .collect();
    let mut s = format!(
        "| {} |\n|{sep}\n",
        header
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    for r in rows {
        s.push_str(&format!(
            "| {} |\n",
            r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    s
}

/// The Markdown summary table: one row per configuration, cells `mean ± sd` over the finished
/// seeds (`mean` alone for one; `(k)` when only k of them logged the metric).
pub fn summary_md(sweep: &Sweep, g: &Gathered) -> String {
    let mut header: Vec<String> = vec!["config".into(), "n".into()];
    header.extend(g.columns.iter().cloned());
    let rows: Vec<Vec<String>> = summarize(sweep, g)
        .into_iter()
        .map(|s| {
            let mut r = vec![s.config.clone(), format!("{}/{}", s.finished, s.runs)];
            for st in &s.stats {
                r.push(match st {
                    None => String::new(),
                    Some((m, sd, n)) => {
                        let mut cell = md_num(*m);
                        if let Some(sd) = sd {
                            cell = format!("{cell} ± {}", md_num(*sd));
                        }
                        if *n < s.finished {
                            cell = format!("{cell} ({n})");
                        }
                        cell
                    }
                });
            }
            r
        })
        .collect();
    md_table(&header, &rows)
}

/// The Markdown table of every run.
pub fn runs_md(sweep: &Sweep, g: &Gathered) -> String {
    let mut header: Vec<String> = vec!["run".into(), "status".into()];
    header.extend(g.columns.iter().cloned());
    let rows: Vec<Vec<String>> = g
        .rows
        .iter()
        .map(|row| {
            let mut r = vec![sweep.runs[row.index].name.clone(), row.status.clone()];
            r.extend(
                g.columns
                    .iter()
                    .map(|c| row.get(c).map(md_num).unwrap_or_default()),
            );
            r
        })
        .collect();
    md_table(&header, &rows)
}

/// The gather directory.
pub fn dir(sweep: &Sweep) -> PathBuf {
    sweep.root.join("gather")
}

fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) -> Result<(), Error> {
    crate::io::write_atomically(path, bytes)?;
    written.push(path.to_path_buf());
    Ok(())
}

/// Gathers, writes the files, and returns the Markdown summary, the files written and the
/// warnings.
pub fn gather(
    sweep: &Sweep,
    opts: &GatherOptions,
) -> Result<(String, Vec<PathBuf>, Vec<String>), Error> {
    let g = collect(sweep, opts);
    let mut warnings = g.warnings.clone();
    let out = dir(sweep);
    let mut written = Vec::new();
    write(&out.join("runs.csv"), &runs_csv(sweep, &g)?, &mut written)?;
    write(
        &out.join("summary.csv"),
        &summary_csv(sweep, &g)?,
        &mut written,
    )?;
    let unfinished = g.rows.iter().filter(|r| r.status != "done").count();
    let mut md = format!(
        "# Sweep {}\n\n## Mean ± sd over seeds (sample sd; n: finished runs/runs)\n\n{}",
        sweep
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        summary_md(sweep, &g)
    );
    if unfinished > 0 {
        md.push_str(&format!(
            "\n{unfinished} of {} runs are not finished: they are left out of the means.\n",
            g.rows.len()
        ));
    }
    md.push_str(&format!("\n## Runs\n\n{}", runs_md(sweep, &g)));
    write(&out.join("summary.md"), md.as_bytes(), &mut written)?;
    let finished: Vec<PathBuf> = g
        .rows
        .iter()
        .filter(|r| r.status == "done")
        .map(|r| sweep.runs[r.index].dir.clone())
        .collect();
    for key in &opts.plots {
        if finished.is_empty() {
            warnings.push(format!("plot {key}: no finished run"));
            break;
        }
        let args = crate::compare::CompareArgs {
            runs: finished.clone(),
            keys: vec![key.clone()],
            x: opts.x.clone(),
            out: None,
            title: None,
            mean_seeds: true,
        };
        let plotted = crate::compare::collect(&args).and_then(|series| {
            Ok(crate::run::plot::line_plot_png(
                &series,
                &opts.x,
                key,
                &format!("{key} (mean over seeds)"),
            )
            .map_err(|e| crate::errors::message(&e))?)
        });
        match plotted {
            Ok(png) => write(
                &out.join(format!("{}.png", key.replace(['/', '\\'], "_"))),
                &png,
                &mut written,
            )?,
            Err(e) => warnings.push(format!("plot {key}: {e}")),
        }
    }
    Ok((summary_md(sweep, &g), written, warnings))
}
