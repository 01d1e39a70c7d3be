//! `ganscript compare`: logged metrics of several runs on one plot (PNG) and in one table.
//!
//! ```text
//! ganscript compare runs/magan runs/ebgan-m30 --y e_x,e_z --x epoch --out energies.png
//! ganscript compare runs/roth-*-s1 runs/roth-*-s2 --y modes --mean-seeds --out modes.png
//! ```
//! Each run's `metrics.jsonl` is read; every (run, key) pair becomes a line. With `--mean-seeds`,
//! runs whose directory names differ only in a trailing `-s<seed>` are averaged (at the x values
//! all of them logged) and drawn as one line, over a shaded band from the seeds' minimum to their
//! maximum. The table printed gives each line's last value,
//! its minimum and maximum.

use crate::errors::Error;
use crate::run::plot::{line_plot_with_bands_png, Band, Series};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What to compare and where to draw it (the arguments of `ganscript compare`).
#[derive(clap::Args, Debug, Clone)]
pub struct CompareArgs {
    /// Run directories (each with a metrics.jsonl).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The metrics to draw, comma-separated (e.g. e_x,e_z).
    #[arg(long = "y", value_delimiter = ',', required = true)]
    pub keys: Vec<String>,
    /// The x axis key.
    #[arg(long, default_value = "step")]
    pub x: String,
    /// The PNG to write (without it, only the table is printed).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The plot's title.
    #[arg(long)]
    pub title: Option<String>,
    /// Average runs whose directory names differ only in a trailing `-s<seed>`.
    #[arg(long)]
    pub mean_seeds: bool,
}

/// The rows of the run directory `dir`'s `metrics.jsonl`.
pub fn read_rows(dir: &Path) -> Result<Vec<serde_json::Value>, Error> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                Error::msg(format!(
                    "{}:{}: not a JSON object: {e}",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

/// The (x, y) points of `key` in `rows` (read from `dir`), in logged order.
pub fn series_of(
    rows: &[serde_json::Value],
    dir: &Path,
    x: &str,
    key: &str,
) -> Result<Vec<(f64, f64)>, Error> {
    let out: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|row| Some((row[x].as_f64()?, row[key].as_f64()?)))
        .collect();
    if out.is_empty() {
        let mut keys: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.as_object())
            .flat_map(|r| {
                r.iter()
                    .filter(|(_, v)| v.is_number())
                    .map(|(k, _)| k.as_str())
            })
            .collect();
        keys.sort();
        keys.dedup();
        return Err(Error::Msg(format!(
            "{}: no row has both `{x}` and `{key}`; its numeric keys: {}",
            dir.join("metrics.jsonl").display(),
            if keys.is_empty() {
                "none".to_string()
            } else {
                keys.join(", ")
            }
        )));
    }
    Ok(out)
}

/// For `--mean-seeds`: the settings (and the script) on which the runs averaged into one line
/// differ, one line each (`lr: 0.0001 (a-s1), 0.0002 (a-s2)`); empty when only the seeds differ.
pub fn group_differences(dirs: &[PathBuf]) -> Vec<String> {
    let configs: Vec<serde_json::Value> = dirs
        .iter()
        .map(|d| {
            std::fs::read_to_string(d.join("config.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null)
        })
        .collect();
    let mut keys: Vec<String> = configs
        .iter()
        .filter_map(|c| c["settings"].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    let mut check = |what: &str, values: Vec<&serde_json::Value>| {
        if values.windows(2).any(|w| w[0] != w[1]) {
            let each: Vec<String> = values
                .iter()
                .zip(dirs)
                .map(|(v, d)| format!("{v} ({})", run_name(d)))
                .collect();
            out.push(format!("{what}: {}", each.join(", ")));
        }
    };
    check(
        "script",
        configs.iter().map(|c| &c["script_sha256"]).collect(),
    );
    for k in &keys {
        check(
            &format!("setting {k}"),
            configs.iter().map(|c| &c["settings"][k.as_str()]).collect(),
        );
    }
    out
}

/// The name of a run in tables and legends: its directory's file name.
fn run_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// The group name of a run directory: its file name without a trailing `-s<digits>`.
pub fn seed_group(dir: &Path) -> String {
    let name = run_name(dir);
    match name.rsplit_once("-s") {
        Some((base, seed)) if !seed.is_empty() && seed.chars().all(|c| c.is_ascii_digit()) => {
            base.to_string()
        }
        _ => name,
    }
}

/// The x values present in every one of several series, in order, each with its y values.
fn common_points(all: &[Vec<(f64, f64)>]) -> Vec<(f64, Vec<f64>)> {
    let mut acc: BTreeMap<u64, (f64, Vec<f64>)> = BTreeMap::new();
    for s in all {
        for &(x, y) in s {
            acc.entry(x.to_bits()).or_insert((x, Vec::new())).1.push(y);
        }
    }
    let mut out: Vec<(f64, Vec<f64>)> = acc
        .into_values()
        .filter(|(_, ys)| ys.len() == all.len())
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// The mean of several series at the x values present in all of them.
pub fn mean_series(all: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    common_points(all)
        .into_iter()
        .map(|(x, ys)| (x, ys.iter().sum::<f64>() / ys.len() as f64))
        .collect()
}

/// The min–max spread of several series at the x values present in all of them.
pub fn spread(all: &[Vec<(f64, f64)>]) -> Band {
    common_points(all)
        .into_iter()
        .map(|(x, ys)| {
            let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (x, lo, hi)
        })
        .collect()
}

/// The runs grouped into lines: one group per run, or with `--mean-seeds` one per seed group
/// ([`seed_group`]), in the order first seen.
fn groups(args: &CompareArgs) -> Vec<(String, Vec<PathBuf>)> {
    let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for run in &args.runs {
        let name = if args.mean_seeds {
            seed_group(run)
        } else {
            run_name(run)
        };
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, dirs)) if args.mean_seeds => dirs.push(run.clone()),
            _ => groups.push((name, vec![run.clone()])),
        }
    }
    groups
}

/// The lines to draw: one per (run or seed group, key).
pub fn collect(args: &CompareArgs) -> Result<Vec<Series>, Error> {
    Ok(collect_with_bands(args)?.0)
}

/// [`collect`], with each seed mean's min–max spread over its seeds (`None` for single runs).
pub fn collect_with_bands(args: &CompareArgs) -> Result<(Vec<Series>, Vec<Option<Band>>), Error> {
    let groups = groups(args);
    let mut series = Vec::new();
    let mut bands = Vec::new();
    for (name, dirs) in &groups {
        let rows = dirs
            .iter()
            .map(|d| read_rows(d))
            .collect::<Result<Vec<_>, _>>()?;
        for key in &args.keys {
            let all = dirs
                .iter()
                .zip(&rows)
                .map(|(d, r)| series_of(r, d, &args.x, key))
                .collect::<Result<Vec<_>, _>>()?;
            let (points, band) = if all.len() == 1 {
                (all.into_iter().next().unwrap_or_default(), None)
            } else {
                (mean_series(&all), Some(spread(&all)))
            };
            bands.push(band);
            let mut label = name.clone();
            if args.keys.len() > 1 {
                label = format!("{label} {key}");
            }
            if dirs.len() > 1 {
                label = format!("{label} (mean of {})", dirs.len());
            }
            series.push((label, points));
        }
    }
    Ok((series, bands))
}

/// A table of each line's last, minimum and maximum value.
pub fn table(series: &[Series], x: &str) -> String {
    let width = series
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = format!(
        "{:width$}  {:>10}  {:>12}  {:>12}  {:>12}\n",
        "line",
        format!("last {x}"),
        "last",
        "min",
        "max"
    );
    for (name, p) in series {
        let (lx, ly) = p.last().copied().unwrap_or((f64::NAN, f64::NAN));
        let min = p.iter().map(|q| q.1).fold(f64::INFINITY, f64::min);
        let max = p.iter().map(|q| q.1).fold(f64::NEG_INFINITY, f64::max);
        s.push_str(&format!(
            "{name:width$}  {lx:>10}  {ly:>12.4}  {min:>12.4}  {max:>12.4}\n"
        ));
    }
    s
}

/// `ganscript compare`.
pub fn main(args: &CompareArgs) -> Result<(), Error> {
    if args.keys.is_empty() {
        return Err("compare: give the metrics to draw with --y KEY[,KEY...]".into());
    }
    if args.mean_seeds {
        for (name, dirs) in groups(args).iter().filter(|(_, d)| d.len() > 1) {
            let diffs = group_differences(dirs);
            if !diffs.is_empty() {
                eprintln!(
                    "warning: --mean-seeds averages runs of `{name}` that differ in more than the seed:\n  {}",
                    diffs.join("\n  ")
                );
            }
        }
    }
    let (series, bands) = collect_with_bands(args)?;
    print!("{}", table(&series, &args.x));
    if let Some(out) = &args.out {
        let title = args.title.clone().unwrap_or_else(|| args.keys.join(", "));
        let png = line_plot_with_bands_png(&series, &bands, &args.x, "value", &title)
            .map_err(|e| crate::errors::message(&e))?;
        crate::io::write_atomically(out, &png)?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}
