"""One figure style for the whole book.

Train curves are dashed, test curves solid; epochs run on a log axis (grokking spans decades);
several seeds are drawn as their median and a band from the lowest to the highest. Call
:func:`use_style` once at the top of a chapter.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from grokbook.measures import (
    aligned,
    epochs_to,
    fourier_spectrum,
    frequency_plane,
    principal_components,
)
from grokbook.train import History

TRAIN_STYLE = {"linestyle": "--", "alpha": 0.9}
TEST_STYLE = {"linestyle": "-"}
# seaborn's colour-blind-safe palette (Okabe-Ito-like), shared by every figure and widget.
PALETTE = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#56b4e9",
           "#949494"]
# One colour per method wherever it appears (a figure, a widget, another chapter): the reader
# learns "orange is plain training" once.
METHOD_COLOURS = {
    "scratch": PALETTE[1], "plain": PALETTE[1],
    "GrokTransfer": PALETTE[0],
    "GrokFast-EMA": PALETTE[2], "GrokFast-MA": PALETTE[4],
    "random A": PALETTE[7],
    "NeuralGrok": PALETTE[3], "normalised": PALETTE[5], "TensorNorm": PALETTE[5],
    "wd-only": PALETTE[6], "small-init": "#fbafe4",
    "scratch, init 1": "#fbafe4",  # chapter 4's digits: scratch at a smaller init, like small-init
}
DPI = 150


def method_colour(name: str) -> str:
    """The colour of method ``name`` (see :data:`METHOD_COLOURS`); other names get a palette
    colour chosen from the name itself, so it is the same in every figure and session."""
    if name in METHOD_COLOURS:
        return METHOD_COLOURS[name]
    return PALETTE[sum(name.encode()) % len(PALETTE)]


def use_style() -> None:
    """Set the book's figure style once per chapter: seaborn's theme with the colour-blind
    palette, 150 dpi PNGs, readable legends, constrained layout (no overlapping labels)."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.85)
    mpl.rcParams.update({
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "figure.constrained_layout.use": True,
        "grid.alpha": 0.5,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "legend.fontsize": 9,
        "legend.frameon": False,
        "lines.linewidth": 1.6,
    })


def _as_list(histories: History | Sequence[History]) -> list[History]:
    return [histories] if isinstance(histories, History) else list(histories)


def plot_band(ax: plt.Axes, histories: History | Sequence[History], column: str,
              color: str | None = None, label: str | None = None, **style) -> None:
    """Draw ``column`` against epochs: the median over runs and a min-max band (log x axis).

    Runs that stopped early are held at their last value (see ``measures.aligned``).
    """
    epochs, values = aligned(_as_list(histories), column)
    keep = epochs > 0  # a log axis has no epoch 0
    epochs, values = epochs[keep], values[:, keep]
    (line,) = ax.plot(epochs, np.median(values, axis=0), color=color, label=label, **style)
    if len(values) > 1:
        ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=line.get_color(),
                        alpha=0.18, linewidth=0)
    ax.set_xscale("log")
    ax.set_xlabel("epoch")


def plot_curves(histories: History | Sequence[History], metric: str = "acc",
                ax: plt.Axes | None = None, color: str | None = None,
                label: str = "") -> plt.Axes:
    """Train (dashed) and test (solid) ``metric`` (``"acc"`` or ``"loss"``) over epochs."""
    if metric not in ("acc", "loss"):
        raise ValueError(f"metric must be 'acc' or 'loss', got {metric!r}")
    ax = ax or plt.gca()
    color = color or PALETTE[0]
    prefix = f"{label} " if label else ""
    plot_band(ax, histories, f"train_{metric}", color=color, label=f"{prefix}train",
              **TRAIN_STYLE)
    plot_band(ax, histories, f"test_{metric}", color=color, label=f"{prefix}test", **TEST_STYLE)
    if metric == "loss":
        ax.set_yscale("log")
        ax.set_ylabel("cross-entropy loss")
    else:
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="best")
    return ax


def mark_time_gap(ax: plt.Axes, history: History, threshold: float = 0.95,
                  color: str = "0.5") -> None:
    """Shade the memorization plateau: from ``threshold`` train accuracy to the same test
    accuracy (to the end of the run if test accuracy never gets there)."""
    start = epochs_to(history, "train_acc", threshold)
    if start is None:
        return
    end = epochs_to(history, "test_acc", threshold) or history.epoch[-1]
    ax.axvspan(max(start, 1), max(end, 1), color=color, alpha=0.12, linewidth=0,
               label="time gap")


def training_figure(histories: History | Sequence[History], title: str = "",
                    color: str | None = None) -> plt.Figure:
    """The book's standard picture of a run: accuracy, loss and weight norm side by side."""
    runs = _as_list(histories)
    fig, (acc, loss, norm) = plt.subplots(1, 3, figsize=(10, 3.2))
    plot_curves(runs, "acc", ax=acc, color=color)
    mark_time_gap(acc, runs[0])
    acc.legend(loc="best")
    plot_curves(runs, "loss", ax=loss, color=color)
    plot_band(norm, runs, "weight_norm", color=color or PALETTE[0])
    norm.set_ylabel("weight norm")
    if title:
        fig.suptitle(title)
    return fig


def plot_task_table(data, ax: plt.Axes | None = None) -> plt.Axes:
    """The whole table ``(a op b) mod p`` as an image; the test cells are hidden in grey, so the
    reader sees how little of the table the network is shown."""
    ax = ax or plt.gca()
    table = np.full((data.p, data.p), np.nan)
    a, b = data.x_train.T.numpy()
    table[a, b] = data.y_train.numpy()
    ax.set_facecolor("0.88")
    ax.imshow(table, cmap="viridis", interpolation="nearest")
    ax.set_xlabel("b")
    ax.set_ylabel("a")
    ax.grid(False)
    return ax


def _luminance(rgba) -> float:
    """Perceived brightness of a colour in [0, 1]: dark cells get white labels."""
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def plot_heatmap(ax: plt.Axes, values: np.ndarray, rows: Sequence, cols: Sequence,
                 row_label: str, col_label: str, never: str = "never") -> plt.Axes:
    """A grid of epochs (``values[i, j]``, NaN for "never within the budget"), annotated."""
    shown = np.ma.masked_invalid(np.asarray(values, dtype=float))
    image = ax.imshow(shown, cmap="YlOrBr", aspect="auto")
    ax.set_facecolor("0.85")
    for (i, j), value in np.ndenumerate(np.asarray(values, dtype=float)):
        text = never if np.isnan(value) else f"{value:.0f}"
        dark = not np.isnan(value) and _luminance(image.cmap(image.norm(value))) < 0.45
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if dark else "black")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.grid(False)
    plt.colorbar(image, ax=ax, shrink=0.8)
    return ax


def plot_embedding(ax: plt.Axes, table, title: str = "", labels: int = 6) -> plt.Axes:
    """An embedding table seen from its top two principal directions.

    Each token is a dot coloured by its number on a cyclic colour map (so ``p - 1`` and ``0``
    get neighbouring colours, as they are neighbours mod p); consecutive numbers are joined by a
    faint line, and about ``labels`` of them are written out. The axis labels say how much of
    the table's variance the picture shows.
    """
    import torch

    coords, explained = principal_components(torch.as_tensor(table, dtype=torch.float32), 2)
    x, y = coords.numpy().T
    numbers = np.arange(len(x))
    ax.plot(x, y, color="0.75", linewidth=0.6, zorder=1)
    ax.scatter(x, y, c=numbers, cmap="twilight", s=14, zorder=2)
    for n in numbers[:: max(1, len(x) // labels)] if labels > 0 else ():
        ax.annotate(str(n), (x[n], y[n]), fontsize=7, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC 2 ({explained[1]:.0%})")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_similarity(ax: plt.Axes, table, title: str = "") -> plt.Axes:
    """The cosine similarity of every pair of tokens, ``table @ table.T`` for unit rows: the
    geometry the network is given before it learns anything."""
    rows = np.asarray(table, dtype=float)
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    ax.imshow(rows @ rows.T, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xlabel("token b")
    ax.set_ylabel("token a")
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def plot_frequency_circle(ax: plt.Axes, table, k: int, title: str = "",
                          labels: int = 6) -> plt.Axes:
    """A table's rows in the plane of its frequency ``k`` (``measures.frequency_plane``).

    Token ``a`` is coloured by ``k a mod n`` on a cyclic colour map, so a clean circle at
    frequency ``k`` shows as a ring whose colours run once around, and a faint line joins the
    tokens in that order (a regular polygon for an exact circle). The axis label says how much
    of the table's power lies at ``k``.
    """
    import torch

    table = torch.as_tensor(table, dtype=torch.float32)
    x, y = frequency_plane(table, k).numpy().T
    n = len(x)
    order = (np.arange(n) * pow(k, -1, n)) % n if math.gcd(k, n) == 1 else np.arange(n)
    ax.plot(x[order], y[order], color="0.75", linewidth=0.6, zorder=1)
    ax.scatter(x, y, c=(np.arange(n) * k) % n, cmap="twilight", s=14, zorder=2)
    for a in range(0, n, max(1, n // labels)):
        ax.annotate(str(a), (x[a], y[a]), fontsize=7, xytext=(2, 2), textcoords="offset points")
    share = float(fourier_spectrum(table)[k - 1])
    ax.set_xlabel(f"frequency {k}: {share:.0%} of the power")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return ax


def plot_tuning(scores, chapter: str, profile: str, task: str, methods: Sequence[str],
                chosen: dict[str, tuple[float, float]] | None = None) -> plt.Figure:
    """One heatmap per method of the tuning grid (``grokbook.tuning.scores``): the median
    epochs to 95% test over the tuning seeds per (weight decay, lr), ">N" where the median lands
    on a seed that never got there; the chosen cell of each method is framed."""
    return plot_tuning_rows(scores, chapter, profile, {task: chosen or {}}, methods)


def plot_tuning_rows(scores, chapter: str, profile: str,
                     chosen: Mapping[str, Mapping[str, tuple[float, float]]],
                     methods: Sequence[str], titles: Mapping[str, str] | None = None
                     ) -> plt.Figure:
    """:func:`plot_tuning`'s heatmaps for several tasks in one figure: a row per task of
    ``chosen`` (``{task: {method: (lr, weight decay) framed}}``), each row coloured on its own
    scale, ``titles[task]`` beside its row. One figure, however many tasks, so that a page
    keeps one figure per cell as tasks are added."""
    tasks = list(chosen)
    if not tasks:
        raise ValueError("chosen must name at least one task")
    for task, cells in chosen.items():
        unknown = sorted(set(cells) - set(methods))
        if unknown:
            raise ValueError(f"chosen[{task!r}] frames {unknown}, which are not among the "
                             f"methods drawn: {', '.join(methods)}")
    untitled = sorted(set(tasks) - set(titles or {})) if titles is not None else []
    if untitled:
        raise ValueError(f"titles lacks the tasks {untitled}: give one title per task or none")
    fig, axes = plt.subplots(len(tasks), len(methods),
                             figsize=(3.1 * len(methods), 2.9 * len(tasks)),
                             squeeze=False, sharey="row")
    for row, task in zip(axes, tasks):
        rows = scores[(scores.profile == profile) & (scores.chapter == chapter)
                      & (scores.task == task)]
        if rows.empty:
            raise ValueError(f"the tuning scores have no {profile} rows of chapter {chapter!r} "
                             f"on task {task!r}")
        top = float(rows["median"][~rows["censored"].astype(bool)].max())
        for ax, method in zip(row, methods):
            _tuning_map(ax, rows[rows.method == method], top, chosen[task].get(method))
            ax.set_title(method)
            ax.set_ylabel("" if ax is not row[0] else "weight decay" if titles is None
                          else f"{titles[task]}\nweight decay")
    return fig


def _tuning_map(ax: plt.Axes, cell, top: float, chosen: tuple[float, float] | None):
    """One method's heatmap of median epochs over (weight decay, lr), ``chosen`` framed."""
    import seaborn as sns

    values = cell.pivot(index="weight_decay", columns="lr", values="median")
    censored = cell.pivot(index="weight_decay", columns="lr", values="censored")
    labels = values.copy().astype(object)
    for i, j in np.ndindex(values.shape):
        v = values.iat[i, j]
        labels.iat[i, j] = f">{v:.0f}" if censored.iat[i, j] else f"{v:.0f}"
    sns.heatmap(values, mask=censored.astype(bool).to_numpy(), annot=labels, fmt="",
                cmap="YlGnBu_r", vmin=0, vmax=top, cbar=False, ax=ax,
                annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white")
    ax.set_facecolor("0.88")  # never within the budget (on the median seed): grey
    for i, j in np.ndindex(values.shape):  # the mask hides the censored cells' labels
        if censored.iat[i, j]:
            ax.text(j + 0.5, i + 0.5, labels.iat[i, j], ha="center", va="center",
                    fontsize=8, color="0.35")
    ax.invert_yaxis()
    ax.tick_params(axis="y", rotation=0)
    ax.set_xlabel("learning rate")
    if chosen is not None:
        lr, wd = chosen
        j, i = list(values.columns).index(lr), list(values.index).index(wd)
        ax.add_patch(mpl.patches.Rectangle((j, i), 1, 1, fill=False, edgecolor="black",
                                           linewidth=2))


@contextlib.contextmanager
def fixed_jitter(seed: int = 0):
    """NumPy's global generator seeded for the block and restored after it, for seaborn's
    strip plots, which jitter with it: the same data give the same picture every time,
    whatever ran before."""
    state = np.random.get_state()  # noqa: NPY002 (seaborn draws from the legacy generator)
    np.random.seed(seed)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def plot_seed_epochs(ax: plt.Axes, data: dict, label: str = "epochs to 95% test",
                     intervals: dict | None = None) -> plt.Axes:
    """Every seed of every method (``{method: stats.Censored}``): one dot per seed in the
    method's colour, a seed that never got there drawn at its budget as a triangle pointing
    right (">N"), the median as a black bar, "k/n reached" at the right edge; ``intervals``
    (``{method: (low, high)}``, ``stats.Estimate``s) adds each median's confidence interval as a
    black line (an end at a censored bound ends in an arrow)."""
    import pandas as pd
    import seaborn as sns

    order = list(data)
    frame = pd.DataFrame([{"method": name, "value": b if v is None else v, "reached": v is not None}
                          for name, c in data.items() for v, b in zip(c.values, c.budgets)])
    palette = {name: method_colour(name) for name in order}
    for reached, marker, size in ((True, "o", 5), (False, ">", 7)):
        part = frame[frame.reached == reached]
        if len(part):
            with fixed_jitter():
                sns.stripplot(part, x="value", y="method", order=order, hue="method",
                              palette=palette, legend=False, jitter=0.2, size=size,
                              marker=marker, linewidth=0.6, edgecolor="black", ax=ax)
    for i, c in enumerate(data.values()):
        m = c.median()
        ax.plot([m.value, m.value], [i - 0.35, i + 0.35], color="black", linewidth=2)
        ax.annotate(f"{c.k}/{c.n}", (1.0, i), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        if intervals and order[i] in intervals:
            low, high = intervals[order[i]]
            ax.plot([low.value, high.value], [i + 0.42, i + 0.42], color="black", linewidth=1)
            if high.censored:
                ax.plot([high.value], [i + 0.42], marker=">", color="black", markersize=4)
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("")
    keys = [mpl.lines.Line2D([], [], linestyle="none", marker=marker, color="0.5",
                             markeredgecolor="black", label=text)
            for marker, text in (("o", "reached 95%"), (">", "not within the budget (at it)"))]
    ax.legend(handles=keys, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncols=2)
    return ax


def plot_ranked(ax: plt.Axes, rows, ranked, unit: str = "gflop") -> plt.Axes:
    """One task of a shoot-out table (``grokbook.leaderboard.per_run``) in the order of its
    leaderboard ``ranked`` (``leaderboard.board``): every seed's ``unit``, the median and its
    bootstrap interval (:func:`plot_seed_epochs`), on plain log ticks."""
    from grokbook.leaderboard import UNITS, censored_of

    order = list(ranked.index)
    data = {m: censored_of(rows[rows.method == m], unit) for m in order}
    spans = {m: (ranked.loc[m, "low"], ranked.loc[m, "high"]) for m in order}
    plot_seed_epochs(ax, data, UNITS[unit], intervals=spans)
    return plain_log_ticks(ax, "x")


OVERLAP = 0.08
"""Markers of the cost-gap scatter closer than this on both axes (log cost, and asinh of the
time gap over 10, the symlog's scale) are drawn as concentric rings."""


TASK_MARKERS = "osD^vP*X"
"""The cost-gap scatter's marker shapes, one per task."""


def plot_cost_gap(ax: plt.Axes, table, unit: str = "gflop",
                  labels: dict[str, str] | None = None) -> plt.Axes:
    """Per method and task of a shoot-out table (``grokbook.leaderboard.per_run``), the median
    ``unit`` against the median time gap: cost on one axis, the delay it leaves on the other.
    A filled marker is a median that was observed, an open one a median at the budget (more
    than half of the seeds never reached 95% test); one marker shape per task, named in the
    legend by ``labels[task]`` (default: an operation's formula, else the task's name)."""
    from grokbook.leaderboard import UNITS, censored_of
    from grokbook.tasks import OPERATIONS

    tasks = sorted(set(table.task))
    if len(tasks) > len(TASK_MARKERS):
        raise ValueError(f"table must hold at most {len(TASK_MARKERS)} tasks (one marker "
                         f"shape each), got {len(tasks)}")
    markers = dict(zip(tasks, TASK_MARKERS))
    labels = {t: OPERATIONS[t].formula if t in OPERATIONS else t for t in tasks} | (labels or {})
    points = []
    for (task, method), runs in table.groupby(["task", "method"], sort=False):
        cost, gap = (censored_of(runs, u).median() for u in (unit, "time_gap"))
        points.append((task, method, gap, cost))
    places = [(np.arcsinh(g.value / 10), np.log(c.value)) for _, _, g, c in points]
    rings: list[int] = []
    for i, (task, method, gap, cost) in enumerate(points):
        # markers of one task that (nearly) coincide are drawn as rings around each other,
        # the first smallest and on top, so that none hides another: each a ring wider than
        # every earlier marker it nearly covers (a chain A~B~C gets three sizes)
        under = max((rings[j] + 1 for j in range(i) if points[j][0] == task
                     and abs(places[j][0] - places[i][0]) < OVERLAP
                     and abs(places[j][1] - places[i][1]) < OVERLAP), default=0)
        rings.append(under)
        colour = method_colour(method)
        ax.scatter([gap.value], [cost.value], marker=markers[task], s=45 * (1 + 1.2 * under),
                   facecolor="none" if cost.censored or gap.censored else colour,
                   edgecolor=colour, linewidth=1.4, zorder=3 - 0.01 * under)
    ax.set_xlabel(f"median {UNITS['time_gap']}")
    ax.set_ylabel(f"median {UNITS[unit]}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    methods = list(dict.fromkeys(table.method))
    keys = [mpl.lines.Line2D([], [], linestyle="none", marker="o", color=method_colour(m),
                             label=m) for m in methods]
    keys += [mpl.lines.Line2D([], [], linestyle="none", marker=mk, color="0.4",
                              markerfacecolor="none", label=labels[task])
             for task, mk in markers.items()]
    ax.legend(handles=keys, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax


def plot_regime(ax: plt.Axes, summary, unit: str = "seconds") -> plt.Axes:
    """Chapter 4's regime map (``grokbook.regime.summary`` in ``unit``): one cell per (train
    fraction, p), coloured by log2 of scratch's median cost over GrokTransfer's (blue:
    GrokTransfer cheaper, red: scratch cheaper, white: equal), written as the ratio ("≥" or
    "≤" where a median is censored and the ratio only a bound) over "k/n" seeds that reached
    95% test for GrokTransfer and scratch; grey, "neither", where neither median was
    reached. A framed cell is one whose two bootstrap intervals of the median do not overlap
    (a sure difference); the others are ties at these seeds."""
    import seaborn as sns

    from grokbook.leaderboard import UNITS
    from grokbook.regime import BOUND_SIGNS, log2_ratio

    values = log2_ratio(summary)
    labels = values.copy().astype(object)
    by_cell = summary.set_index(["frac", "p"])
    missing = set()
    for i, j in np.ndindex(values.shape):
        if (values.index[i], values.columns[j]) not in by_cell.index:  # not on the map
            missing.add((i, j))
            labels.iat[i, j] = ""
            continue
        row = by_cell.loc[(values.index[i], values.columns[j])]
        labels.iat[i, j] = (f"{BOUND_SIGNS[row.ratio_bound]}{row.ratio:.2g}x\n"
                            f"{row.GT_k}/{row.GT_n} · {row.scratch_k}/{row.scratch_n}")
    finite = np.abs(values.to_numpy())[np.isfinite(values.to_numpy())]
    span = max(1.0, float(finite.max())) if finite.size else 1.0
    sns.heatmap(values, annot=labels, fmt="", cmap="RdBu", center=0, vmin=-span, vmax=span,
                ax=ax, annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white",
                cbar_kws={"label": f"log2(scratch / GrokTransfer),\n{UNITS[unit]}"})
    ax.set_facecolor("0.88")  # neither side reached 95% test on its median seed: grey
    for i, j in np.ndindex(values.shape):
        if (i, j) in missing:
            continue
        row = by_cell.loc[(values.index[i], values.columns[j])]
        if row.ratio_bound == "?":  # the heatmap leaves NaN cells (and their labels) out
            ax.text(j + 0.5, i + 0.5, f"neither\n{row.GT_k}/{row.GT_n} · "
                    f"{row.scratch_k}/{row.scratch_n}", ha="center", va="center",
                    fontsize=8, color="0.35")
        if row.verdict != "tie":
            ax.add_patch(mpl.patches.Rectangle((j, i), 1, 1, fill=False, edgecolor="black",
                                               linewidth=2))
    ax.set_xlabel("p")
    ax.set_ylabel("train fraction")
    ax.tick_params(axis="y", rotation=0)
    return ax


def plot_regime_costs(ax: plt.Axes, summary, unit: str = "seconds") -> plt.Axes:
    """The medians behind :func:`plot_regime`: per p (line style) and method (colour), the
    median ``unit`` over the train fraction with its bootstrap interval; an open marker is a
    median at the budget (more than half of the seeds never reached 95% test)."""
    from grokbook.leaderboard import UNITS

    styles = dict(zip(sorted(set(summary.p)), ("-", "--", ":", "-.")))
    sides = (("scratch", "scratch"), ("GT", "GrokTransfer"))
    for i, (p, rows) in enumerate(summary.groupby("p")):
        rows = rows.sort_values("frac")
        for j, (short, method) in enumerate(sides):
            colour = method_colour(method)
            medians = rows[f"{short}_median"]
            y = np.array([m.value for m in medians])
            x = rows.frac + 0.003 * (2 * i + j - 1.5)  # side by side, not on top of each other
            ax.plot(x, y, color=colour, linestyle=styles[p],
                    label=f"{method}, p = {p}")
            # the interval as a bar of its own: a censored median (">N") may lie outside it,
            # when the never-runs' budgets differ
            ax.vlines(x, [e.value for e in rows[f"{short}_low"]],
                      [e.value for e in rows[f"{short}_high"]], color=colour, linewidth=1)
            ax.scatter(x, y, color=colour, zorder=3,
                       facecolor=["none" if m.censored else colour for m in medians])
    ax.set_yscale("log")
    plain_log_ticks(ax, "y")
    ax.set_xlabel("train fraction")
    ax.set_ylabel(f"median {UNITS[unit]}")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    return ax


def plain_log_ticks(ax: plt.Axes, axis: str = "both") -> plt.Axes:
    """Readable ticks on a log axis spanning a decade or two: majors at 1, 2 and 5 times a power
    of ten, written as plain numbers, and no minor labels (matplotlib labels the minor ticks of
    such an axis, and they run into each other)."""
    for name in ("x", "y") if axis == "both" else (axis,):
        target = getattr(ax, f"{name}axis")
        target.set_major_locator(mpl.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        target.set_major_formatter(mpl.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        target.set_minor_formatter(mpl.ticker.NullFormatter())
    return ax


def plot_snapshots(table) -> plt.Figure:
    """The paper's Fig. 7 from a ``tables.snapshot_table``: left, the weak model's test
    accuracy after each number of epochs, one line per seed; right, the target's time gap
    against that accuracy, one colour per seed, a target that never reached 95% test within its
    budget drawn as a cross on the dotted line at the budget."""
    fig, (weak_ax, gap_ax) = plt.subplots(1, 2, figsize=(11, 3.6))
    budget = int(table.budget.max())
    for i, (seed, rows) in enumerate(table.groupby("seed")):
        colour = PALETTE[i % len(PALETTE)]
        rows = rows.sort_values("weak epochs")
        weak_ax.plot(rows["weak epochs"], rows["weak test acc"], marker="o", color=colour,
                     label=f"seed {seed}")
        done = rows[rows.reached]
        gap_ax.scatter(done["weak test acc"], done["time gap"], color=colour, zorder=3)
        never = rows[~rows.reached]
        gap_ax.scatter(never["weak test acc"], [budget] * len(never), color=colour,
                       marker="x", zorder=3)
    gap_ax.axhline(budget, color="0.5", linestyle=":", linewidth=1)
    gap_ax.annotate(f"never within {budget} epochs", (0.99, budget), ha="right",
                    va="bottom", xycoords=("axes fraction", "data"), fontsize=8)
    weak_ax.set_xlabel("weak model's epochs (no accuracy stop)")
    weak_ax.set_ylabel("weak model's test accuracy")
    weak_ax.legend(loc="upper left", ncols=2)
    gap_ax.set_xlabel("weak model's test accuracy when its embedding was taken")
    gap_ax.set_ylabel("target's time gap (epochs)")
    weak_ax.yaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
    gap_ax.xaxis.set_major_formatter(mpl.ticker.PercentFormatter(1.0))
    return fig
