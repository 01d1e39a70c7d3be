#!/usr/bin/env python3
"""The pre-registered statistics of EXPERIMENTS.md, from the run directories of run.sh and the
`ganscript eval --json` files of report.sh. Standard library only.

    python3 scripts/experiments/summarize.py RUNS_DIR > RUNS_DIR/summary.md
"""
import glob
import json
import math
import os
import re
import statistics
import sys

R = sys.argv[1] if len(sys.argv) > 1 else "runs/experiments"


def rows(run):
    path = os.path.join(R, run, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def done(run):
    """Finished: config.json says "ok" (older runs of run.sh also left a `done` file)."""
    if os.path.exists(os.path.join(R, run, "done")):
        return True
    try:
        return json.load(open(os.path.join(R, run, "config.json"))).get("status") == "ok"
    except (OSError, ValueError):
        return False


def seeds(prefix):
    """The finished runs `prefix-s<seed>`, by seed."""
    out = {}
    for d in glob.glob(os.path.join(R, f"{prefix}-s*")):
        m = re.fullmatch(re.escape(prefix) + r"-s(\d+)", os.path.basename(d))
        if m and os.path.isdir(d) and done(os.path.basename(d)):
            out[int(m.group(1))] = os.path.basename(d)
    return dict(sorted(out.items()))


def ms(values, digits=2):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 seed)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def mean_sd(values):
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return (values[0] if values else float("nan")), 0.0
    return statistics.mean(values), statistics.stdev(values)


def slope(xs, ys):
    mx, my = statistics.mean(xs), statistics.mean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def evals(name):
    """run name -> metrics, from RUNS_DIR/eval-*.json files."""
    out = {}
    for f in glob.glob(os.path.join(R, "eval-*.json")):
        try:
            v = json.load(open(f))
        except ValueError:
            continue
        for m in v.get("runs", []):
            out[os.path.basename(m["run"].rstrip("/"))] = m
    return out.get(name)


def table(header, body):
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for r in body:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def verdict(ok, what):
    print(f"- {what}: **{'reproduced' if ok else 'not reproduced'}**")


# ---------------------------------------------------------------- expected margin
def margin():
    print("## Expected margins (Table 1)\n")
    for lam in ["1", "20"]:
        runs = seeds(f"margin-lam{lam}")
        if not runs:
            continue
        per = {}
        for s, run in runs.items():
            for r in rows(run):
                per.setdefault(r["penalty"], []).append(r)
        base = [r["expected_margin"] for r in per.get("none", [])]
        bm, bsd = mean_sd(base)
        body = []
        larger, ratios = [], []
        for p, rs in per.items():
            em = [r["expected_margin"] for r in rs]
            m, sd = mean_sd(em)
            ratio = m / bm if bm else float("nan")
            if p != "none":
                larger.append(m - bm > max(sd, bsd))
                ratios.append(ratio)
            body.append([p, ms(em, 3), ms([r["grid_margin"] for r in rs], 3), ms([r["accuracy"] for r in rs], 3),
                         f"{ratio:.2f}", f"{max(r['constraint_left'] for r in rs):.3g}"])
        print(f"λ = {lam}, seeds {list(runs)}:\n")
        table(["penalty", "expected margin (search)", "expected margin (grid)", "accuracy", "ratio to none", "largest distance left"], body)
        verdict(all(larger), f"λ = {lam}: every penalty gives a larger expected margin than none")
        verdict(sum(r >= 2 for r in ratios) >= 4, f"λ = {lam}: 2 to 3 times larger (ratio ≥ 2 for ≥ 4 of 6)")
        print()


# ---------------------------------------------------------------- MAGAN
def magan():
    print("## MAGAN against EBGAN\n")
    body = []
    stats = {}
    for cfg in ["magan", "magan-nobc", "ebgan-m30"]:
        for s, run in seeds(cfg).items():
            rs = rows(run)
            late = [r for r in rs if r["epoch"] >= 11]
            if len(late) < 2:
                continue
            ep = [r["epoch"] for r in late]
            sx = slope(ep, [r["e_x"] for r in late])
            sz = slope(ep, [r["e_z"] for r in late])
            sg = slope(ep, [r["e_z"] - r["e_x"] for r in late])
            upd = [r["epoch"] for r in rs if r.get("margin_updated")]
            e = evals(run) or {}
            st = dict(updates=len(upd), sx=sx, sz=sz, sg=sg, score=e.get("mnist_score"), fd=e.get("feature_distance"),
                      ex=rs[-1]["e_x"], ez=rs[-1]["e_z"], conv=rs[-1]["convergence"])
            stats.setdefault(cfg, []).append(st)
            body.append([cfg, s, f"{len(upd)} ({', '.join(map(str, upd))})" if cfg != "ebgan-m30" else "–",
                         f"{sx:+.3f}", f"{sz:+.3f}", f"{sg:+.3f}", f"{rs[-1]['e_x']:.2f}", f"{rs[-1]['e_z']:.2f}",
                         f"{rs[-1]['convergence']:.2f}",
                         f"{e['mnist_score']:.2f}" if e else "–", f"{e['feature_distance']:.1f}" if e else "–"])
    if not body:
        return
    table(["run", "seed", "margin updates (epochs)", "slope E_x", "slope E_z", "slope E_z − E_x", "E_x (last)", "E_z (last)",
           "convergence (last)", "MNIST score", "feature distance"], body)
    agg = []
    for cfg, st in stats.items():
        agg.append([cfg, len(st), ms([x["updates"] for x in st], 1), ms([x["sx"] for x in st], 3), ms([x["sz"] for x in st], 3),
                    ms([x["sg"] for x in st], 3), ms([x["score"] for x in st]), ms([x["fd"] for x in st], 1)])
    table(["run", "seeds", "margin updates", "slope E_x", "slope E_z", "slope E_z − E_x", "MNIST score", "feature distance"], agg)
    mg, eb = stats.get("magan", []), stats.get("ebgan-m30", [])
    if mg:
        verdict(all(x["updates"] >= 2 for x in mg), "MAGAN lowers its margin at least twice in every seed")
        verdict(all(x["sx"] < 0 and x["sz"] < 0 for x in mg), "MAGAN: E_x and E_z fall together (epochs 11–50)")
    if eb and mg:
        verdict(all(x["sg"] > 0 for x in eb) and not all(x["sg"] > 0 for x in mg),
                "EBGAN: E_z − E_x grows (diverging energies), MAGAN's does not")
        if all(x["score"] is not None for x in mg + eb):
            (a, sa), (b, sb) = mean_sd([x["score"] for x in mg]), mean_sd([x["score"] for x in eb])
            verdict(a - b > max(sa, sb), "MAGAN's MNIST score above EBGAN's by more than the seed spread")
            (a, sa), (b, sb) = mean_sd([x["fd"] for x in mg]), mean_sd([x["fd"] for x in eb])
            verdict(b - a > max(sa, sb), "MAGAN's feature distance below EBGAN's by more than the seed spread")
    print()


# ---------------------------------------------------------------- Roth et al.
def roth(prefix, configs, half):
    print(f"## Roth et al., {prefix}\n")
    body, agg = [], {}
    for cfg in configs:
        for s, run in seeds(f"{prefix}-{cfg}").items():
            rs = rows(run)
            total = rs[-1]["step"]
            late = [r for r in rs if r["step"] > total * half]
            modes = [r["modes"] for r in late]
            first7 = next((r["step"] for r in rs if r["modes"] == 7), None)
            m = statistics.mean(modes)
            hq = statistics.mean(r["high_quality"] for r in late)
            agg.setdefault(cfg, []).append((m, hq, sum(x == 7 for x in modes), len(modes)))
            body.append([cfg, s, f"{m:.2f}", f"{sum(x == 7 for x in modes)} / {len(modes)}", min(modes), f"{hq:.3f}",
                         first7 if first7 is not None else "never", rs[-1]["modes"]])
    if not body:
        return
    table(["configuration", "seed", "mean modes, 2nd half", "points with all 7", "fewest", "within 3σ, 2nd half",
           "first step with 7", "modes at the end"], body)
    table(["configuration", "seeds", "mean modes, 2nd half", "within 3σ, 2nd half"],
          [[c, len(v), ms([x[0] for x in v]), ms([x[1] for x in v], 3)] for c, v in agg.items()])
    un = [x[0] for x in agg.get("unreg", [])]
    reg = [x[0] for c in ("g0.1", "g0.1-ann") for x in agg.get(c, [])]
    if un and reg:
        verdict(min(reg) > max(un) and statistics.mean(reg) >= 6,
                "every regularized run keeps more modes than every unregularized one, and ≥ 6 on average")
    print()


# ---------------------------------------------------------------- max-margin GANs
def maxmargin():
    print("## Maximum-margin GANs (HingeGAN, 10k steps)\n")
    agg = {}
    body = []
    for cfg in ["none", "l2-ls", "l2-hinge", "linf-hinge", "l1-hinge"]:
        for s, run in seeds(f"mm-{cfg}").items():
            e = evals(run)
            if not e:
                continue
            agg.setdefault(cfg, []).append(e)
            body.append([cfg, s, f"{e['feature_distance']:.1f}", f"{e['mnist_score']:.2f}"])
    if not agg:
        return
    table(["penalty", "seed", "feature distance", "MNIST score"], body)
    ref = next(iter(agg.values()))[0].get("reference", {})
    table(["penalty", "seeds", "feature distance", "MNIST score"],
          [[c, len(v), ms([e["feature_distance"] for e in v], 1), ms([e["mnist_score"] for e in v])] for c, v in agg.items()]
          + [["(real digits)", "–", f"{ref.get('feature_distance', float('nan')):.1f}", f"{ref.get('mnist_score', float('nan')):.2f}"]])
    fd = {c: mean_sd([e["feature_distance"] for e in v]) for c, v in agg.items()}
    if "none" in fd:
        n, nsd = fd["none"]
        verdict(all(n - m > max(sd, nsd) for c, (m, sd) in fd.items() if c != "none"), "every penalty helps")
    if all(k in fd for k in ("linf-hinge", "l2-ls", "l2-hinge")):
        m, sd = fd["linf-hinge"]
        tol = max(sd, fd["l2-ls"][1], fd["l2-hinge"][1])
        verdict(m <= fd["l2-ls"][0] + tol and m <= fd["l2-hinge"][0] + tol, "L∞-hinge at least as good as the L2 penalties")
    print()


# ---------------------------------------------------------------- TAN
def tempered():
    print("## Tempered Adversarial Networks (LSGAN)\n")
    body, groups = [], {}
    for cfg in ["lens", "nolens"]:
        for s, run in seeds(f"tan-{cfg}").items():
            e = evals(run)
            if not e:
                continue
            trains = e["feature_distance"] < 200
            groups.setdefault(cfg, []).append((e, trains))
            body.append([cfg, s, f"{e['feature_distance']:.1f}", f"{e['mnist_score']:.2f}", "yes" if trains else "no"])
    if not groups:
        return
    table(["run", "seed", "feature distance", "MNIST score", "trains (< 200)"], body)
    table(["run", "seeds", "trained", "feature distance", "MNIST score"],
          [[c, len(v), sum(t for _, t in v), ms([e["feature_distance"] for e, _ in v], 1), ms([e["mnist_score"] for e, _ in v])]
           for c, v in groups.items()])
    if "lens" in groups and "nolens" in groups:
        verdict(all(t for _, t in groups["lens"]) and sum(t for _, t in groups["nolens"]) <= 2,
                "every lens run trains, at most 2 of 5 runs without the lens do")
    print()


margin()
magan()
roth("roth", ["unreg", "g0.1", "g0.1-ann", "noise-ann"], 0.5)
roth("roth5", ["unreg", "g0.1"], 0.5)
maxmargin()
tempered()
