"""Figures from the result rows and the trials' artifacts, each as PNG and PDF bytes.

- alpha trade-off: forget vs retain metric per alpha, one line per generator (and variant);
- sample grids: the trials' `grid_forget.png` / `grid_retain.png` (GAN: `samples.png`);
- T-SNE of output and original embeddings, forget and retain (`embeddings.npz`);
- speedup bars of the GAN methods against retraining, and speedup and FID against the
  request (item k and each class) where a sweep asked several sizes.

Matplotlib is used through `matplotlib.figure.Figure` (no pyplot, no global backend), so making
figures never opens a window or changes state for the caller. A trial whose artifacts are
missing or unreadable is left out with a note instead of failing the figure.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.load import as_results
from analysis.pivot import (GENERATOR_NAMES, GENERATOR_ORDER, LAYOUTS, METHOD_ORDER,
                            PAPER_METRICS, REFERENCE_METHODS, _ablation_methods, _method_label,
                            _rank, _slices, _sort_value, _varying, aggregate, by_family,
                            fmt_value, metric_label,
                            speedup_records, trials)

EMBEDDINGS = ("forget_output", "forget_original", "retain_output", "retain_original")


@dataclass
class Figure:
    name: str      # file stem
    title: str
    caption: str
    png: bytes
    pdf: bytes


def _render(fig, name: str, title: str, caption: str) -> Figure:
    png, pdf = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    # no creation date: the same results give the same PDF bytes
    fig.savefig(pdf, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})
    return Figure(name, title, caption, png.getvalue(), pdf.getvalue())


def _new(width: float, height: float):
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), layout="constrained")


def _gen_name(g) -> str:
    return GENERATOR_NAMES.get(g, fmt_value(g))


def _metric_axis(split: str, metric: tuple, direction) -> str:
    """`metric`: (name, extractor). E.g. `forget FID (classifier) (higher is better)`,
    `forget MIA AUC (best at 0.5 (ranked by ...))`."""
    better = f" ({direction.words})" if direction else ""
    return f"{split} {metric_label(*metric)}{better}"


# ---------------------------------------------------------------- alpha trade-off

def alpha_tradeoff(records: list[dict], metrics=PAPER_METRICS) -> list[Figure]:
    """Per slice and per method with an alpha sweep: one panel per metric, x = forget, y =
    retain value (mean, with std bars), one line per generator, points labelled by alpha;
    the original model of each generator is a star for reference."""
    out = []
    for suffix, recs in _slices(by_family(records).get("i2i", []), LAYOUTS["i2i"].slices):
        for method in sorted(_ablation_methods(recs, "alpha"), key=lambda m: _rank(
                m, METHOD_ORDER)):
            mine = [r for r in recs if r["method"] == method]
            fixed = ("method", "generator", "alpha")
            variants = _varying(mine, fixed).get(method, [])
            # a panel per metric and the extractor it was computed on
            stats = {(r["generator"], _method_label(r, False, variants), r["alpha"],
                      r["split"], (r["metric"], r["extractor"])): r for r in mine}
            panels = sorted({k[4] for k in stats if k[4][0] in metrics and k[3] == "forget"}
                            & {k[4] for k in stats if k[3] == "retain"},
                            key=lambda m: (metrics.index(m[0]), _sort_value(m[1])))
            if not panels:
                continue
            fig = _new(4.2 * len(panels), 3.6)
            axes = np.atleast_1d(fig.subplots(1, len(panels)))
            alphas = defaultdict(set)
            for k in stats:
                alphas[k[:2]].add(fmt_value(k[2]))
            # a variant run at one alpha only is no trade-off curve
            lines = sorted((k for k, v in alphas.items() if len(v) > 1),
                           key=lambda k: (_rank(k[0], GENERATOR_ORDER), k[1]))
            colours = {line: f"C{i % 10}" for i, line in enumerate(lines)}
            for ax, metric in zip(axes, panels):
                for line in lines:
                    pts = []
                    for alpha in sorted({k[2] for k in stats if k[:2] == line},
                                        key=_sort_value):
                        f = stats.get((*line, alpha, "forget", metric))
                        r = stats.get((*line, alpha, "retain", metric))
                        if f and r:
                            pts.append((alpha, f, r))
                    if len(pts) < 2:  # this metric lacks a split at some alpha
                        continue
                    xs = [p[1]["stat"].mean for p in pts]
                    ys = [p[2]["stat"].mean for p in pts]
                    xe = [0 if math.isnan(p[1]["stat"].half) else p[1]["stat"].half for p in pts]
                    ye = [0 if math.isnan(p[2]["stat"].half) else p[2]["stat"].half for p in pts]
                    label = _gen_name(line[0]) + line[1][len(method):]
                    ax.errorbar(xs, ys, xerr=xe, yerr=ye, marker="o", capsize=2,
                                color=colours[line], label=label)
                    for (alpha, _, _), x, y in zip(pts, xs, ys):
                        ax.annotate(f"α={fmt_value(alpha)}", (x, y), fontsize=7,
                                    xytext=(3, 3), textcoords="offset points")
                    ref = [r for r in recs if r["method"] == "original"
                           and r["generator"] == line[0]
                           and (r["metric"], r["extractor"]) == metric]
                    fx = [r["stat"].mean for r in ref if r["split"] == "forget"]
                    ry = [r["stat"].mean for r in ref if r["split"] == "retain"]
                    if len(fx) == 1 and len(ry) == 1:
                        ax.plot(fx, ry, marker="*", markersize=11, linestyle="none",
                                color=colours[line])
                f_dir = next((r["direction"] for k, r in stats.items()
                              if k[3] == "forget" and k[4] == metric), None)
                r_dir = next((r["direction"] for k, r in stats.items()
                              if k[3] == "retain" and k[4] == metric), None)
                ax.set_xlabel(_metric_axis("forget", metric, f_dir))
                ax.set_ylabel(_metric_axis("retain", metric, r_dir))
                ax.grid(alpha=0.3)
            axes[0].legend(fontsize=7, title="★ original", title_fontsize=7)
            tag = f"_{suffix}" if suffix else ""
            title = f"{method}: forget vs retain quality over alpha"
            out.append(_render(fig, f"alpha_{method}{tag}", title,
                               f"{title} ({recs[0]['dataset']}, {fmt_value(recs[0]['task'])}, "
                               f"mask ratio {fmt_value(recs[0]['mask_ratio'])}); mean and "
                               f"95% interval over seeds; star: the original model."))
    return out


# ---------------------------------------------------------------- per-trial artifacts

def _trials(rows) -> list[dict]:
    """One dict per successful trial: KEYS, sweep_id, trial_id, seed, artifact_dir, and `rep`
    (a sort key of its replicate)."""
    return [{**t, "rep": (_sort_value(t["pretrain_seed"]), _sort_value(t["seed"]))}
            for t in trials(rows)]


def _note(notes: list, text: str) -> None:
    # several slices (data set, task, mask ratio) and both families can give the same text,
    # and grids and T-SNE can both find a row's artifacts unreadable for the same reason
    if text not in notes:
        notes.append(text)


def _representatives(trials: list[dict], groups: tuple, notes: list) -> dict:
    """(group values) -> [(row label, candidate trials)], one entry per table row; the
    candidates are the replicates with an artifact directory, first seed first. Rows without
    any are named in `notes`."""
    fixed = ("method", *groups)
    varying = _varying(trials, fixed)
    alpha = defaultdict(set)
    for t in trials:
        alpha[tuple(t[c] for c in fixed)].add(fmt_value(t["alpha"]))
    found: dict = {}
    bare = set()
    for t in sorted(trials, key=lambda t: (t["rep"], t["sweep_id"], t["trial_id"])):
        label = _method_label(t, len(alpha[tuple(t[c] for c in fixed)]) > 1,
                              varying.get(t["method"], []))
        key = (tuple(t[g] for g in groups), label)
        if t["artifact_dir"]:
            found.setdefault(key, []).append(t)
        else:
            bare.add(key)
    if trials and not found:
        _note(notes, "no trial has an artifact directory (artifact_dir): no sample grids or "
                     "T-SNE")
    elif bare - set(found):
        for g, label in sorted(bare - set(found), key=str):
            _note(notes, f"{' '.join(map(fmt_value, g))} {label}: no trial with artifacts")
    out: dict = defaultdict(list)
    for (g, label), ts in sorted(found.items(), key=lambda kv: (
            tuple(_sort_value(v) for v in kv[0][0]), _rank(kv[1][0]["method"], METHOD_ORDER),
            _sort_value(kv[1][0]["alpha"]), kv[0][1])):
        out[g].append((label, ts))
    return out


def artifact_candidates(rows, notes: list) -> dict:
    """The trials whose artifacts the grids and T-SNE show, worked out once for both:
    {"i2i": [(slice suffix, {(generator,): items})], "gan": [(slice suffix, {(setting,
    forget_k, forget_set): items})]}, items being [(row label, candidate trials)] in table
    order. Image-to-image slices are (data set, task, mask ratio), GAN slices data sets."""
    groups = by_family(_trials(rows))
    return {fam: [(suffix, _representatives(part, layout.artifact_groups, notes))
                  for suffix, part in _slices(groups.get(fam, []), layout.slices)]
            for fam, layout in LAYOUTS.items()}


def _pick(results: Path, group: tuple, label: str, candidates: list[dict], loader,
          what: str, notes: list):
    """(trial, data) of the first candidate whose artifacts `loader(dir)` can read (it returns
    (data, None) or (None, reason)); None with a note when no candidate's can be."""
    reasons = []
    for t in candidates:
        data, why = loader(results / t["artifact_dir"])
        if data is not None:
            return t, data
        reasons.append(f"{t['trial_id']}: {why}")
    _note(notes, f"{' '.join(map(fmt_value, group))} {label}: no readable {what} "
                 f"({'; '.join(reasons)})")
    return None


def _image(path: Path):
    import matplotlib.image as mpimg

    if not path.is_file():
        return None, f"no {path.name}"
    try:
        return mpimg.imread(path), None
    except (OSError, ValueError, SyntaxError) as e:
        return None, f"unreadable {path.name} ({e.__class__.__name__})"


def _grid_pair(d: Path):
    pair = [_image(d / "grid_forget.png"), _image(d / "grid_retain.png")]
    bad = [why for img, why in pair if img is None]
    return (None, ", ".join(bad)) if bad else ([img for img, _ in pair], None)


def sample_grids(candidates: dict, results_dir, notes: list) -> list[Figure]:
    """i2i: per slice and generator, one row per table row (first seed), forget and retain
    grids side by side. GAN: per data set and forget set, `samples.png` of each method.
    `candidates`: artifact_candidates(rows, notes)."""
    results = Path(results_dir)
    out = []
    for suffix, reps in candidates["i2i"]:
        for (gen,), items in reps.items():
            imgs = []
            for label, cands in items:
                got = _pick(results, (gen,), label, cands, _grid_pair, "sample grids", notes)
                if got:
                    imgs.append((label, *got))
            if not imgs:
                continue
            fig = _new(11, 1.6 * len(imgs) + 0.6)
            axes = np.array(fig.subplots(len(imgs), 2, squeeze=False))
            for i, (label, t, pair) in enumerate(imgs):
                for j, (img, split) in enumerate(zip(pair, ("forget", "retain"))):
                    ax = axes[i, j]
                    ax.imshow(img, cmap="gray", interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if i == 0:
                        ax.set_title(f"{split} (rows: original / masked input / output)",
                                     fontsize=8)
                    if j == 0:
                        ax.set_ylabel(f"{label}\nseed {t['seed']}", fontsize=7, rotation=0,
                                      ha="right", va="center")
            tag = f"_{suffix}" if suffix else ""
            title = f"{_gen_name(gen)}: sample grids"
            out.append(_render(fig, f"grids_{gen}{tag}", title,
                               f"{title}, first seed with artifacts of each row of the table."))
    for suffix, reps in candidates["gan"]:
        for gi, (group, items) in enumerate(reps.items()):
            imgs = []
            for label, cands in items:
                got = _pick(results, group, label, cands, lambda d: _image(d / "samples.png"),
                            "samples.png", notes)
                if got:
                    imgs.append((label, got[1]))
            if not imgs:
                continue
            ncol = min(4, len(imgs))
            nrow = math.ceil(len(imgs) / ncol)
            fig = _new(3 * ncol, 3.1 * nrow)
            axes = np.array(fig.subplots(nrow, ncol, squeeze=False)).ravel()
            for ax in axes:
                ax.axis("off")
            for ax, (label, img) in zip(axes, imgs):
                ax.imshow(img, cmap="gray", interpolation="nearest")
                ax.set_title(label, fontsize=8)
            setting, k, forget = group
            what = f"{fmt_value(setting)} unlearning, k={fmt_value(k)}, forget {fmt_value(forget)}"
            tag = f"_{suffix}" if suffix else ""
            out.append(_render(fig, f"samples{tag}_{gi}", f"GAN samples: {what}",
                               f"Generated samples after unlearning ({what}), first seed."))
    return out


# ---------------------------------------------------------------- T-SNE

def _embeddings(d: Path):
    path = d / "embeddings.npz"
    if not path.is_file():
        return None, "no embeddings.npz"
    try:
        with np.load(path) as z:
            arrays = {k: np.asarray(z[k], dtype=np.float64) for k in EMBEDDINGS}
    except (OSError, ValueError, KeyError) as e:
        return None, f"unreadable embeddings.npz ({e.__class__.__name__}: {e})"[:200]
    dims = {a.shape[1] for a in arrays.values() if a.ndim == 2}
    if len(dims) != 1 or any(a.ndim != 2 or len(a) == 0 for a in arrays.values()):
        return None, "embeddings.npz does not hold four [N, D] arrays of one D"
    if sum(len(a) for a in arrays.values()) < 5:
        return None, "too few embeddings for T-SNE"
    return arrays, None


def tsne_points(arrays: dict, max_points: int, seed: int = 0) -> dict:
    """2-d T-SNE of the four arrays fitted together (at most `max_points` rows of each, drawn
    with a fixed seed); perplexity is kept below the number of points, as T-SNE requires."""
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    parts = {}
    for k in EMBEDDINGS:
        a = arrays[k]
        parts[k] = a[np.sort(rng.choice(len(a), max_points, replace=False))] \
            if len(a) > max_points else a
    x = np.concatenate([parts[k] for k in EMBEDDINGS])
    n = len(x)
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    # exact gradients: on the few hundred points drawn here they are several times faster
    # than Barnes-Hut on a small CPU
    y = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
             max_iter=500, method="exact" if n <= 1000 else "barnes_hut").fit_transform(x)
    out, start = {}, 0
    for k in EMBEDDINGS:
        out[k] = y[start:start + len(parts[k])]
        start += len(parts[k])
    return out


_STYLE = {"forget_output": ("tab:red", "o", "forget output"),
          "forget_original": ("tab:red", "x", "forget original"),
          "retain_output": ("tab:blue", "o", "retain output"),
          "retain_original": ("tab:blue", "x", "retain original")}


def tsne(candidates: dict, results_dir, notes: list, max_points: int = 100) -> list[Figure]:
    """Per slice and generator: one T-SNE panel per table row (first seed): outputs (dots)
    and originals (crosses), forget (red) and retain (blue). `candidates`:
    artifact_candidates(rows, notes)."""
    results = Path(results_dir)
    out = []
    for suffix, reps in candidates["i2i"]:
        for (gen,), items in reps.items():
            panels = []
            for label, cands in items:
                got = _pick(results, (gen,), label, cands, _embeddings, "embeddings", notes)
                if got:
                    panels.append((label, got[0], tsne_points(got[1], max_points)))
            if not panels:
                continue
            ncol = min(4, len(panels))
            nrow = math.ceil(len(panels) / ncol)
            fig = _new(3.2 * ncol, 3.0 * nrow + 0.4)
            axes = np.array(fig.subplots(nrow, ncol, squeeze=False)).ravel()
            for ax in axes:
                ax.axis("off")
            for ax, (label, t, pts) in zip(axes, panels):
                for k in EMBEDDINGS:
                    colour, marker, name = _STYLE[k]
                    ax.scatter(pts[k][:, 0], pts[k][:, 1], s=8, c=colour, marker=marker,
                               alpha=0.6 if marker == "o" else 0.45, linewidths=0.8,
                               label=name)
                ax.set_title(f"{label} (seed {t['seed']})", fontsize=8)
            axes[0].legend(fontsize=6, loc="best")
            tag = f"_{suffix}" if suffix else ""
            title = f"{_gen_name(gen)}: T-SNE of output and original embeddings"
            out.append(_render(fig, f"tsne_{gen}{tag}", title,
                               f"{title}; dots: outputs, crosses: originals; red: forget, "
                               f"blue: retain; at most {max_points} points per set."))
    return out


# ---------------------------------------------------------------- speedup

def speedup_bars(speed: list[dict]) -> list[Figure]:
    """Per GAN data set: speedup over retraining (mean and 95% interval over seeds) per method,
    grouped
    by setting and forget set; log scale when the bars span more than a factor 20.
    `speed`: speedup_records(rows)."""
    recs = [r for r in speed if r["metric"] == "speedup"
            and r["method"] not in REFERENCE_METHODS]
    out = []
    for suffix, part in _slices(recs, ("dataset",)):
        fixed = ("method", "setting", "forget_k", "forget_set")
        variants = _varying(part, fixed)
        groups = sorted({(r["setting"], r["forget_k"], r["forget_set"]) for r in part},
                        key=lambda g: tuple(_sort_value(v) for v in g))
        bars = sorted({_method_label(r, False, variants.get(r["method"], [])): r["method"]
                       for r in part}.items(), key=lambda kv: (_rank(kv[1], METHOD_ORDER),
                                                               kv[0]))
        values = {(g, _method_label(r, False, variants.get(r["method"], []))): r["stat"]
                  for r in part for g in [(r["setting"], r["forget_k"], r["forget_set"])]}
        fig = _new(max(5.0, 1.2 + 0.5 * len(groups) * len(bars)), 3.8)
        ax = fig.subplots()
        width = 0.8 / max(1, len(bars))
        for i, (label, _) in enumerate(bars):
            xs, ys, lo, hi = [], [], [], []
            for gi, g in enumerate(groups):
                s = values.get((g, label))
                if s is not None:
                    xs.append(gi + (i - (len(bars) - 1) / 2) * width)
                    ys.append(s.mean)
                    h = 0 if math.isnan(s.half) else s.half
                    # a speedup is positive: the bar's interval stops short of 0 (log axis)
                    lo.append(min(h, 0.99 * s.mean) if s.mean > 0 else 0)
                    hi.append(h)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=label, color=f"C{i % 10}")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{fmt_value(s)} k={fmt_value(k)}\n{fmt_value(f)}"
                            for s, k, f in groups], fontsize=7)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        means = [s.mean for s in values.values() if s.mean > 0]
        if means and max(means) / min(means) > 20:
            ax.set_yscale("log")
        ax.set_ylabel("speedup over retrain (×, higher is better)")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(axis="y", alpha=0.3)
        tag = f"_{suffix}" if suffix else ""
        title = f"GAN unlearning speedup over retraining, {part[0]['dataset']}"
        out.append(_render(fig, f"speedup{tag}", title,
                           f"{title}: retrain's unlearn seconds / the method's, per seed, "
                           f"mean and 95% interval; line at 1×."))
    return out


def speedup_vs_request(speed: list[dict]) -> list[Figure]:
    """Per GAN data set with item requests of two or more sizes: speedup over retraining
    (left) and FID over retrain's (right) against the request, one line per method, item
    requests by k on a log axis and each class request as a point after them; mean and 95%
    interval over replicates. `speed`: speedup_records(rows)."""
    out = []
    recs = [r for r in speed if r["method"] not in REFERENCE_METHODS]
    for suffix, part in _slices(recs, ("dataset",)):
        ks = sorted({r["forget_k"] for r in part if r["setting"] == "item"})
        if len(ks) < 2:
            continue
        classes = sorted({r["forget_set"] for r in part if r["setting"] == "class"})
        # item k on log2 positions; class requests one step apart after the largest k
        top = math.log2(ks[-1])

        def x_of(r):
            if r["setting"] == "item":
                return math.log2(r["forget_k"])
            return top + 1 + classes.index(r["forget_set"])

        variants = _varying(part, ("method", "setting", "forget_k", "forget_set"))
        fig = _new(10.0, 3.8)
        axes = fig.subplots(1, 2)
        for ax, metric, ylabel in ((axes[0], "speedup", "speedup over retrain (×) ↑"),
                                   (axes[1], "fid_vs_retrain", "FID / retrain's FID ↓")):
            lines: dict = {}
            for r in part:
                if r["metric"] == metric:
                    label = _method_label(r, False, variants.get(r["method"], []))
                    lines.setdefault((_rank(r["method"], METHOD_ORDER), label), []).append(r)
            for i, ((_, label), rs) in enumerate(sorted(lines.items())):
                rs.sort(key=x_of)
                dodge = (i - (len(lines) - 1) / 2) * 0.05  # methods side by side at a request
                xs = [x_of(r) + dodge for r in rs]
                ys = [r["stat"].mean for r in rs]
                hs = [0 if math.isnan(r["stat"].half) else r["stat"].half for r in rs]
                lo = [min(h, 0.99 * y) if y > 0 else 0 for h, y in zip(hs, ys)]
                items = [j for j, r in enumerate(rs) if r["setting"] == "item"]
                ax.plot([xs[j] for j in items], [ys[j] for j in items], color=f"C{i % 10}",
                        linewidth=1)
                ax.errorbar(xs, ys, yerr=[lo, hs], fmt="o", markersize=3, capsize=2,
                            color=f"C{i % 10}", label=label)
            ax.axhline(1.0, color="grey", linewidth=0.8)
            if metric == "speedup":
                ax.set_yscale("log")
            else:
                ax.axhline(1.1, color="grey", linewidth=0.8, linestyle=":")
            ax.set_xticks([math.log2(k) for k in ks] + [top + 1 + i for i in range(len(classes))])
            ax.set_xticklabels([f"k={k:g}" for k in ks] +
                               [f"class {fmt_value(c)}" for c in classes], fontsize=7,
                              rotation=30)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=6, ncol=2)
        tag = f"_{suffix}" if suffix else ""
        title = f"GAN unlearning against the request, {part[0]['dataset']}"
        out.append(_render(fig, f"speedup_request{tag}", title,
                           f"{title}: speedup over retraining (retrain's seconds / the "
                           f"method's) and FID over the retrained model's, per replicate, "
                           f"mean and 95% interval; lines at 1× and (right) at 1.1, 10% worse "
                           f"than retraining."))
    return out


def all_figures(rows, results_dir, metrics=PAPER_METRICS, tsne_max: int = 100,
                notes: list | None = None, *, records: list[dict] | None = None,
                speed: list[dict] | None = None, curves: list | None = None) -> list[Figure]:
    """Every figure that applies to these rows (a Results or a DataFrame of result rows);
    problems with artifacts go to `notes`. `records`, `speed` and `curves`: aggregate(rows),
    speedup_records(rows) and curve_records(rows) when the caller already has them (computed
    here otherwise)."""
    notes = [] if notes is None else notes
    res = as_results(rows)

    def figures(res) -> list[Figure]:
        del notes[start:]  # a second run (a damaged file dropped) notes things again
        recs = aggregate(res) if records is None else records
        speeds = speedup_records(res, recs) if speed is None else speed
        candidates = artifact_candidates(res, notes)
        from analysis.curves import curve_figure, curve_records
        from analysis.front import front_figure
        from analysis.relearn import relearn_figure

        found = curve_records(res) if curves is None else curves
        extra = [relearn_figure(recs), curve_figure(found)] + [
            front_figure(part) for part in by_family(recs).values()]
        return (alpha_tradeoff(recs, metrics) + sample_grids(candidates, results_dir, notes)
                + tsne(candidates, results_dir, notes, tsne_max) + speedup_bars(speeds)
                + speedup_vs_request(speeds) + [f for f in extra if f is not None])

    start = len(notes)
    return res.stable(figures)


__all__ = ["Figure", "all_figures", "alpha_tradeoff", "artifact_candidates", "sample_grids",
           "speedup_bars", "speedup_vs_request", "tsne", "tsne_points"]
