"""The report page on frames and arrays: matplotlib plots, HTML tables and the page of one training run.

tasks/report.py reads a run into a RunData and calls `write_page`; everything here works on that data only.
Plots are made with matplotlib's object API on the Agg canvas (no pyplot global state, no display needed):
  (a) the map of model embeddings in 2-D (PCA, and t-SNE or UMAP when installed) coloured by family;
  (b) observed accuracy per model x benchmark (the leaderboard view) as a heatmap;
  (c) forecast vs observed benchmark accuracy, with the diagonal, plus the held-out-benchmark probe table;
  (d) the reliability diagram of correctness forecasts on labelled test-split questions;
  (e) routing accuracy and cost vs the single best model and the oracle as the cost weight varies;
  (f) each model's nearest neighbours in embedding space (cosine), as an HTML table.
Every section degrades to a note (never an exception) when the warehouse is too small for it: one model, one
benchmark, no test labels, no costs, no tags.

Costs follow the router's rule (embedllm/routing.py `normalised_costs`, also stated on the page): cost_per_mtok
divided by the largest registered cost, so utility p - w * cost compares numbers on the same 0..1 scale; a model
without a registered cost counts as free (cost 0), like a local model; with no costs at all, w has no effect.
Routing here scores the stored correctness forecasts of labelled test questions (no checkpoint or torch needed),
choosing per question among the models that have a label for it, which route_embeddings' per-model mask cannot
express; the utility and the argmax are the same as `embedllm route` (embedllm.routing.routing_curve).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib import colormaps
from matplotlib.figure import Figure

from embedllm import metrics
from embedllm.routing import RoutingCurve, normalised_costs, routing_curve

PLOT_DPI = 110
CALIBRATION_BINS = 10
MAX_LEGEND_ENTRIES = 20
MAX_POINT_LABELS = 30
NEIGHBOURS = 5
HEADLINE_METRICS = (
    "test_accuracy",
    "test_auc",
    "test_log_loss",
    "test_ece",
    "route_accuracy",
    "single_best_accuracy",
    "oracle_accuracy",
    "knn_test_accuracy",
    "train_seconds",
)


@dataclass
class Section:
    """One block of the page: a title, a plot (file name in the report folder) or a table, a caption, notes."""

    key: str
    title: str
    caption: str
    image: str | None = None
    alt: str = ""
    table_html: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class RunData:
    """Everything the report reads about one training run."""

    run: dict
    models: pl.DataFrame  # model_id, name, family (resolved), cost_per_mtok, in embedding-row order
    embeddings: np.ndarray  # (n_models, d) float64
    leaderboard: pl.DataFrame  # model, benchmark, accuracy, n_questions
    forecasts: pl.DataFrame  # model, benchmark, predicted_accuracy, observed_accuracy, n_observed, source
    probe: pl.DataFrame  # benchmark, pearson_r, mae, n_models
    test: pl.DataFrame  # model_id, question_id, p_correct, label (labelled test-split pairs)
    onboarded: pl.DataFrame = field(default_factory=pl.DataFrame)  # the report_onboarded rows of the run


def family_of(name: str, family: str | None, tags: list[str] | None) -> str:
    """Return a model's colour group: models.family, else its first tag, else the name before '/', else 'other'."""
    if family:
        return family
    if tags:
        first = next((t for t in tags if t), None)
        if first:
            return first
    if "/" in name and name.split("/", 1)[0]:
        return name.split("/", 1)[0]
    return "other"


# ------------------------------------------------------------------------------------------------ plotting


def _short(name: str, width: int = 28) -> str:
    """Return the part of a model name after the last '/', cut to WIDTH characters."""
    tail = name.rsplit("/", 1)[-1] or name
    return tail if len(tail) <= width else tail[: width - 1] + "…"


def _colours(labels: list[str]) -> dict[str, tuple]:
    """Return a colour per distinct label: tab10 / tab20 when they suffice, else evenly spaced turbo."""
    distinct = sorted(set(labels))
    n = len(distinct)
    if n <= 10:
        cmap = colormaps["tab10"]
        return {lab: cmap(i) for i, lab in enumerate(distinct)}
    if n <= 20:
        cmap = colormaps["tab20"]
        return {lab: cmap(i) for i, lab in enumerate(distinct)}
    cmap = colormaps["turbo"]
    return {lab: cmap(i / max(n - 1, 1)) for i, lab in enumerate(distinct)}


def _save(fig: Figure, out_dir: Path, name: str) -> str:
    """Write FIG as out_dir/NAME (PNG) and return NAME."""
    fig.savefig(out_dir / name, dpi=PLOT_DPI, facecolor="white")
    return name


def project_2d(emb: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
    """Return 2-D layouts of the rows of EMB by method name (PCA, t-SNE or UMAP) and notes on skipped ones."""
    from sklearn.decomposition import PCA

    n, d = emb.shape
    layouts: dict[str, np.ndarray] = {}
    notes: list[str] = []
    k = min(2, n, d)
    pca = PCA(n_components=k).fit(emb)
    xy = np.zeros((n, 2))
    xy[:, :k] = pca.transform(emb)
    share = ", ".join(f"{v:.0%}" for v in pca.explained_variance_ratio_)
    layouts[f"PCA (variance explained: {share})"] = xy
    if n < 4:
        notes.append(f"t-SNE needs at least 4 models; this run has {n}, so only PCA is shown.")
        return layouts, notes
    try:
        import umap  # type: ignore[import-not-found]

        reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)), metric="cosine", random_state=0)
        layouts["UMAP (cosine)"] = reducer.fit_transform(emb)
        return layouts, notes
    except ImportError:
        pass
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    # exact gradients: O(n^2) but far faster than Barnes-Hut's threaded tree for the few hundred models we map
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        metric="cosine",
        init="pca" if d >= 2 else "random",
        method="exact" if n <= 1000 else "barnes_hut",
        max_iter=500,
        random_state=0,
    )
    layouts[f"t-SNE (cosine, perplexity {perplexity:.1f})"] = tsne.fit_transform(emb)
    return layouts, notes


def embedding_map_section(data: RunData, out_dir: Path) -> Section:
    """Return section (a): the models' embeddings in 2-D, coloured by family."""
    sec = Section(
        "map",
        "Map of model embeddings",
        "Each dot is a model; models close together answer the same questions correctly. Colour = "
        "family (models.family, else its first tag, else the name before '/').",
    )
    n = data.models.height
    if n < 2:
        sec.notes.append(f"The run has {n} model embedding(s); a map needs at least 2.")
        return sec
    layouts, sec.notes = project_2d(data.embeddings)
    names, fams = data.models["name"].to_list(), data.models["family"].to_list()
    colours = _colours(fams)
    fig = Figure(figsize=(6.2 * len(layouts) + 1.8, 6.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(layouts)))
    for ax, (method, xy) in zip(axes, layouts.items()):
        for fam in colours:
            idx = [i for i, f in enumerate(fams) if f == fam]
            ax.scatter(
                xy[idx, 0], xy[idx, 1], s=46, color=colours[fam], label=fam, edgecolor="white", linewidth=0.6
            )
        if n <= MAX_POINT_LABELS:
            for i, name in enumerate(names):
                ax.annotate(
                    _short(name, 22), xy[i], xytext=(4, 3), textcoords="offset points", fontsize=7, color="#333333"
                )
        ax.set_title(method, fontsize=11)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
        ax.grid(alpha=0.25)
    if len(colours) <= MAX_LEGEND_ENTRIES:
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="outside right upper",
            title="family",
            fontsize=8,
            title_fontsize=9,
            frameon=False,
        )
    else:
        sec.notes.append(f"{len(colours)} families: the legend is left out; colours still separate families.")
    if n > MAX_POINT_LABELS:
        sec.notes.append(f"{n} models: point labels are left out; the neighbour table below names them.")
    fig.suptitle(f"Model embeddings in 2-D ({n} models, dimension {data.embeddings.shape[1]})", fontsize=13)
    sec.image = _save(fig, out_dir, "embedding_map.png")
    sec.alt = "Scatter plot of model embeddings projected to two dimensions"
    return sec


def accuracy_heatmap_section(data: RunData, out_dir: Path) -> Section:
    """Return section (b): observed accuracy per model x benchmark from the leaderboard view."""
    sec = Section(
        "heatmap",
        "Accuracy per model and benchmark",
        "Each cell is a model's observed accuracy on a benchmark (share of its evaluated questions "
        "answered correctly); brighter = more accurate, grey = not evaluated. Rows: best model first.",
    )
    lb = data.leaderboard
    if lb.height == 0:
        sec.notes.append("The leaderboard is empty: no labels are loaded.")
        return sec
    wide = lb.pivot(on="benchmark", index="model", values="accuracy", aggregate_function="mean")
    benches = sorted(c for c in wide.columns if c != "model")
    wide = wide.with_columns(pl.mean_horizontal(benches).alias("_mean")).sort(
        ["_mean", "model"], descending=[True, False]
    )
    models = wide["model"].to_list()
    acc = np.ma.masked_invalid(wide.select(benches).to_numpy().astype(float))
    cmap = colormaps["viridis"].with_extremes(bad="#d9d9d9")
    width = min(3.0 + 0.85 * len(benches), 22.0) + 2.5
    height = 1.8 + 0.24 * len(models)
    fig = Figure(figsize=(max(width, 6.0), max(height, 3.2)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(acc, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(benches)), benches, rotation=40, ha="right", fontsize=9)
    ax.set_yticks(range(len(models)), [_short(m, 34) for m in models], fontsize=8 if len(models) <= 60 else 6)
    if acc.size <= 400:
        for (i, j), v in np.ndenumerate(acc.filled(np.nan)):
            if not math.isnan(v):
                ax.text(
                    j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.55 else "black"
                )
    ax.set_xlabel("benchmark")
    ax.set_ylabel("model")
    ax.set_title(f"Observed accuracy ({len(models)} models x {len(benches)} benchmarks)", fontsize=12)
    fig.colorbar(im, ax=ax, label="accuracy", shrink=min(1.0, 6.0 / max(height, 1.0)) if height > 12 else 1.0)
    if len(benches) == 1:
        sec.notes.append("Only one benchmark is loaded, so the heatmap is a single column.")
    sec.image = _save(fig, out_dir, "accuracy_heatmap.png")
    sec.alt = "Heatmap of observed accuracy for each model and benchmark"
    return sec


def probe_table_html(probe: pl.DataFrame) -> str:
    """Return the held-out-benchmark probe figures as an HTML table ('' when there are none)."""
    if probe.height == 0:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(str(r['benchmark']))}</td><td>{_fmt(r['pearson_r'])}</td>"
        f"<td>{_fmt(r['mae'])}</td><td>{r['n_models']}</td></tr>"
        for r in probe.iter_rows(named=True)
    )
    return (
        '<p class="caption">Probe: for each benchmark, a linear model on embeddings learned without that '
        "benchmark's labels predicts each model's accuracy on it (held out per model).</p>"
        "<table><thead><tr><th>benchmark held out</th><th>Pearson r</th><th>mean abs. error</th>"
        f"<th>models</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def forecast_section(data: RunData, out_dir: Path) -> Section:
    """Return section (c): forecast vs observed accuracy per model and benchmark, with the diagonal."""
    sec = Section(
        "forecast",
        "Forecast vs observed benchmark accuracy",
        "Each dot is a model on a benchmark: x = accuracy forecast from its embedding, y = accuracy "
        "observed on the questions it answered; dots on the dashed diagonal are perfect forecasts.",
    )
    sec.table_html = probe_table_html(data.probe)
    obs = data.forecasts.filter(pl.col("observed_accuracy").is_not_null())
    if obs.height == 0:
        sec.notes.append("No benchmark forecast has an observed accuracy to compare with.")
        return sec
    benches = sorted(set(obs["benchmark"].to_list()))
    colours = _colours(benches)
    sources = sorted(set(obs["source"].to_list()))
    markers = dict(zip(sources, "osD^v<>"))
    fig = Figure(figsize=(8.6, 6.4), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#666666", linewidth=1, label="perfect forecast")
    for bench in benches:
        for src in sources:
            part = obs.filter((pl.col("benchmark") == bench) & (pl.col("source") == src))
            if part.height:
                label = bench if len(sources) == 1 else f"{bench} ({src})"
                ax.scatter(
                    part["predicted_accuracy"],
                    part["observed_accuracy"],
                    s=30,
                    color=colours[bench],
                    marker=markers.get(src, "o"),
                    alpha=0.85,
                    edgecolor="white",
                    linewidth=0.5,
                    label=label,
                )
    x, y = obs["predicted_accuracy"].to_numpy(), obs["observed_accuracy"].to_numpy()
    r, mae = metrics.pearson(x, y), float(np.mean(np.abs(x - y)))
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.grid(alpha=0.25)
    ax.set_xlabel("forecast accuracy (mean P(correct) over the benchmark's questions)")
    ax.set_ylabel("observed accuracy")
    r_text = f"r = {r:.3f}" if r is not None else "r undefined"
    ax.set_title(
        f"Benchmark accuracy: forecast vs observed ({r_text}, MAE = {mae:.3f}, {obs.height} pairs)", fontsize=11
    )
    if len(benches) * len(sources) + 1 <= MAX_LEGEND_ENTRIES:
        fig.legend(
            *ax.get_legend_handles_labels(),
            loc="outside right upper",
            fontsize=8,
            title="benchmark",
            title_fontsize=9,
            frameon=False,
        )
    if len(benches) == 1:
        sec.notes.append("Only one benchmark: every dot is the same benchmark, one per model.")
    sec.image = _save(fig, out_dir, "forecast_vs_observed.png")
    sec.alt = "Scatter plot of forecast against observed benchmark accuracy"
    return sec


def calibration_section(data: RunData, out_dir: Path) -> Section:
    """Return section (d): the reliability diagram of forecasts on labelled test-split questions."""
    sec = Section(
        "calibration",
        "Calibration of correctness forecasts",
        "Forecasts on unseen (test-split) questions, grouped in 10 bins of predicted P(correct): "
        "on a calibrated forecaster the dots lie on the diagonal; the bars below count forecasts per bin.",
    )
    test = data.test
    if test.height == 0:
        sec.notes.append("No test-split question has both a forecast and a label, so calibration cannot be drawn.")
        return sec
    p = test["p_correct"].to_numpy().astype(float)
    y = test["label"].to_numpy().astype(float)
    conf, frac, counts = metrics.calibration_bins(y, p, CALIBRATION_BINS)
    ece = metrics.ece(y, p, CALIBRATION_BINS)
    used = counts > 0
    fig = Figure(figsize=(6.6, 7.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color="#666666", linewidth=1, label="perfect calibration")
    top.plot(conf[used], frac[used], marker="o", color="#1f77b4", linewidth=1.8, label="forecasts")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("observed fraction correct")
    top.grid(alpha=0.25)
    top.legend(loc="upper left", fontsize=9)
    top.set_title(f"Reliability diagram ({test.height:,} labelled test pairs, ECE = {ece:.3f})", fontsize=11)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bottom.bar(edges[:-1], counts, width=1 / CALIBRATION_BINS, align="edge", color="#9ecae1", edgecolor="white")
    bottom.set_xlabel("forecast P(correct)")
    bottom.set_ylabel("forecasts")
    bottom.grid(alpha=0.25, axis="y")
    if len(set(y.tolist())) == 1:
        sec.notes.append(f"Every labelled test pair has label {int(y[0])}: calibration is shown but says little.")
    sec.image = _save(fig, out_dir, "calibration.png")
    sec.alt = "Reliability diagram of correctness forecasts with a histogram of forecasts"
    return sec


def costs_and_rule(costs: list[float | None]) -> tuple[np.ndarray, str]:
    """Return costs scaled to 0..1 by the router's rule (missing = free, divided by the largest) and the rule."""
    scaled = np.asarray(normalised_costs(costs, len(costs)), dtype=float)
    known = [c for c in costs if c is not None and math.isfinite(c) and c >= 0]
    if not known or max(known) == 0:
        return scaled, "No model has a cost_per_mtok above 0: every cost counts as 0, so w has no effect."
    n_free = len(costs) - len(known)
    rule = (
        f"Costs are cost_per_mtok divided by the largest ({max(known):g}), as `embedllm route --cost-weight` does"
    )
    if n_free:
        rule += f"; {n_free} model(s) without a registered cost count as free (cost 0), e.g. local models"
    return scaled, rule + "."


def test_matrices(test: pl.DataFrame, model_ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (P, Y, mask) models x questions from labelled test pairs; mask marks pairs that have a label."""
    row_of = {m: i for i, m in enumerate(model_ids)}
    test = test.filter(pl.col("model_id").is_in(model_ids)).with_columns(
        pl.col("model_id").replace_strict(row_of, return_dtype=pl.Int64).alias("_row"),
        (pl.col("question_id").rank("dense") - 1).cast(pl.Int64).alias("_col"),
    )
    rows, qcol = test["_row"].to_numpy(), test["_col"].to_numpy()
    n_questions = int(qcol.max()) + 1 if test.height else 0
    shape = (len(model_ids), n_questions)
    p, y, mask = np.zeros(shape), np.zeros(shape), np.zeros(shape, dtype=bool)
    p[rows, qcol] = test["p_correct"].to_numpy()
    y[rows, qcol] = test["label"].to_numpy()
    mask[rows, qcol] = True
    return p, y, mask


def routing_section(data: RunData, out_dir: Path) -> Section:
    """Return section (e): routing accuracy and cost vs the single best model and the oracle as w varies."""
    sec = Section(
        "routing",
        "Routing: accuracy and cost as the cost weight varies",
        "Each labelled test question goes to the evaluated model with the highest p - w x cost; read "
        "how much accuracy the router keeps (left) as w lowers the cost it pays (right).",
    )
    if data.test.height == 0 or data.models.height == 0:
        sec.notes.append("No labelled test-split question has forecasts, so routing cannot be scored.")
        return sec
    cost, rule = costs_and_rule(data.models["cost_per_mtok"].to_list())
    sec.notes.append(rule)
    p, y, mask = test_matrices(data.test, data.models["model_id"].to_list())
    curve = routing_curve(p, y, mask, cost)
    best_name = _short(data.models["name"][curve.single_best_model], 30)
    has_cost = bool(cost.max() > 0)
    fig = Figure(figsize=(12.5 if has_cost else 7.0, 5.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if has_cost else 1))
    panels = [(axes[0], curve.accuracy, curve.single_best_accuracy, curve.oracle_accuracy, "accuracy")]
    if has_cost:
        panels.append((axes[1], curve.cost, curve.single_best_cost, curve.oracle_cost, "mean normalised cost"))
    for ax, series, best, oracle, what in panels:
        ax.plot(curve.weights, series, marker="o", markersize=4, color="#1f77b4", label="EmbedLLM router")
        ax.axhline(best, linestyle="--", color="#d62728", label=f"single best model ({best_name})")
        ax.axhline(oracle, linestyle=":", color="#2ca02c", linewidth=2, label="oracle (cheapest correct)")
        ax.set_xlabel("cost weight w")
        ax.set_ylabel(what)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.25)
        ax.set_title(f"Router {what} vs w", fontsize=11)
    axes[0].legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.suptitle(
        f"Routing {curve.n_questions:,} labelled test questions over {data.models.height} models", fontsize=12
    )
    if not has_cost:
        sec.notes.append("The cost panel is left out because every cost is 0.")
    if data.models.height == 1:
        sec.notes.append("Only one model: the router, the single best model and the oracle coincide.")
    sec.image = _save(fig, out_dir, "routing.png")
    sec.alt = "Line plots of routing accuracy and cost against the cost weight"
    sec.table_html = routing_table_html(curve)
    return sec


def routing_table_html(curve: RoutingCurve) -> str:
    """Return a small HTML table of the routing curve at w = 0, 0.25, 0.5, 1 next to the references."""
    picks = [i for i, w in enumerate(curve.weights) if any(math.isclose(w, t) for t in (0.0, 0.25, 0.5, 1.0))]
    rows = "".join(
        f"<tr><td>router, w = {curve.weights[i]:g}</td><td>{curve.accuracy[i]:.3f}</td>"
        f"<td>{curve.cost[i]:.3f}</td></tr>"
        for i in picks
    )
    rows += (
        f"<tr><td>single best model</td><td>{curve.single_best_accuracy:.3f}</td>"
        f"<td>{curve.single_best_cost:.3f}</td></tr>"
        f"<tr><td>oracle</td><td>{curve.oracle_accuracy:.3f}</td><td>{curve.oracle_cost:.3f}</td></tr>"
    )
    return (
        "<table><thead><tr><th>policy</th><th>accuracy</th><th>mean normalised cost</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def nearest_neighbours(emb: np.ndarray, k: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices, cosine similarities) of each row's K most similar other rows, best first."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = emb / np.where(norms > 0, norms, 1.0)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, emb.shape[0] - 1)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sim, order, axis=1)


def neighbours_section(data: RunData) -> Section:
    """Return section (f): each model's nearest neighbours in embedding space (cosine) as an HTML table."""
    sec = Section(
        "neighbours",
        "Nearest neighbours in embedding space",
        "For each model, the models whose embeddings point the most the same way (cosine similarity: "
        "1 = same direction, 0 = unrelated); neighbours tend to get the same questions right.",
    )
    n = data.models.height
    if n < 2:
        sec.notes.append(f"The run has {n} model embedding(s); neighbours need at least 2.")
        return sec
    order, sims = nearest_neighbours(data.embeddings)
    names, fams = data.models["name"].to_list(), data.models["family"].to_list()
    head = "".join(f"<th>#{j + 1}</th>" for j in range(order.shape[1]))
    body = []
    for i in range(n):
        cells = "".join(
            f'<td>{html.escape(names[j])} <span class="sim">{s:.2f}</span></td>' for j, s in zip(order[i], sims[i])
        )
        body.append(f"<tr><td><b>{html.escape(names[i])}</b></td><td>{html.escape(fams[i])}</td>{cells}</tr>")
    sec.table_html = (
        f'<table class="wide"><thead><tr><th>model</th><th>family</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return sec


def onboarded_section(data: RunData) -> Section:
    """Return the section listing models placed in the run by onboarding and how sure their forecasts are."""
    sec = Section(
        "onboarded",
        "Onboarded models",
        "Models placed in this run from a few evaluated answers, without retraining (embedllm onboard, or a "
        "pipeline run's onboarding policy). The interval width is that of the 90 % interval of each benchmark "
        "forecast: the narrower, the surer; the next training run absorbs their labels.",
    )
    rows = data.onboarded
    if rows.height == 0:
        sec.notes.append("No model was onboarded into this run: every model in it was trained on its labels.")
        return sec
    cols = [
        ("model", "model"),
        ("n_answers", "answers used"),
        ("n_planned", "questions asked"),
        ("full_evaluation", "full evaluation"),
        ("mean_forecast", "mean forecast"),
        ("mean_interval_width", "mean interval width"),
        ("max_interval_width", "widest interval"),
        ("least_sure_benchmark", "on benchmark"),
    ]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c, _ in cols) + "</tr>" for r in rows.to_dicts()
    )
    sec.table_html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return sec


# ---------------------------------------------------------------------------------------------------- page


def _fmt(value: object) -> str:
    """Return a number with 3 decimals (or as is), escaped for HTML; '–' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;
padding:1.5rem 2rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555}img{max-width:100%;height:auto;border:1px solid #eee}
.caption{color:#444;font-style:italic;margin:.4rem 0}.note{background:#fff8e1;border-left:4px solid #f0b400;
padding:.35rem .7rem;margin:.4rem 0}table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .55rem;text-align:left;vertical-align:top}th{background:#f4f4f4}
table.wide{font-size:.8rem}.sim{color:#777}nav a{margin-right:1rem}
"""


def _metrics_html(figures: dict) -> str:
    """Return the run's scalar metrics as a two-column HTML table."""
    first = [k for k in HEADLINE_METRICS if k in figures]
    keys = first + [k for k in figures if k not in first]
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(figures[k])}</td></tr>"
        for k in keys
        if isinstance(figures[k], (int, float, str, bool)) or figures[k] is None
    )
    return (
        f"<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else '<p class="note">The run recorded no metrics.</p>'
    )


def _section_html(sec: Section) -> str:
    """Return one section as HTML."""
    parts = [f'<section id="{sec.key}"><h2>{html.escape(sec.title)}</h2>']
    if sec.image:
        parts.append(f'<img src="{html.escape(sec.image)}" alt="{html.escape(sec.alt)}">')
    parts.append(f'<p class="caption">{html.escape(sec.caption)}</p>')
    parts.extend(f'<p class="note">{html.escape(note)}</p>' for note in sec.notes)
    parts.append(sec.table_html)
    parts.append("</section>")
    return "".join(parts)


def render_html(data: RunData, sections: list[Section]) -> str:
    """Return the whole page: run header, metrics, table of contents and every section."""
    run = data.run
    created = (
        run["created_at"].strftime("%Y-%m-%d %H:%M UTC")
        if isinstance(run["created_at"], datetime)
        else str(run["created_at"])
    )
    n_questions = data.test["question_id"].n_unique() if data.test.height else 0
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>EmbedLLM report: run {html.escape(run['run_id'])}</title><style>{_CSS}</style></head><body>"
        f'<h1>EmbedLLM report</h1><p class="meta">Run <b>{html.escape(run["run_id"])}</b> · created {created} · '
        f"preset {html.escape(str(run['preset']))} · embedder {html.escape(str(run['embedder']))} · "
        f"status {html.escape(str(run['status']))} · {data.models.height} models · "
        f"{n_questions:,} labelled test questions</p>"
        f"<nav>{nav}</nav><h2>Run metrics</h2>{_metrics_html(run['metrics'])}"
        + "".join(_section_html(s) for s in sections)
        + "</body></html>\n"
    )


def write_page(data: RunData, out: Path) -> Path:
    """Write index.html and its PNG plots for DATA into the folder OUT (which must exist); return index.html."""
    sections = [
        embedding_map_section(data, out),
        accuracy_heatmap_section(data, out),
        forecast_section(data, out),
        calibration_section(data, out),
        routing_section(data, out),
        neighbours_section(data),
        onboarded_section(data),
    ]
    index = out / "index.html"
    index.write_text(render_html(data, sections), encoding="utf-8")
    return index
