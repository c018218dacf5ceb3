"""Server-side charts for the admin pages: matplotlib (Agg backend), PNG bytes.

matplotlib is imported on the first chart, not with the app, and no pyplot state is used: each
chart is a stand-alone ``Figure`` on an Agg canvas, cleared after rendering, so concurrent
requests in worker threads do not share anything.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from typing import Any

INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
ACCENT = "#2f6fde"
PALETTE = ("#2f6fde", "#e8833a", "#3a9d5d", "#c94f7c", "#7a5cc4", "#c9a227", "#2aa3a3", "#8c6d5a", "#5f6b7a")

_setup_lock = threading.Lock()
_ready = False


def _figure(width: float, height: float) -> Any:
    """A new Figure on the Agg canvas (selecting the Agg backend on first use)."""
    global _ready
    with _setup_lock:
        if not _ready:
            import matplotlib

            matplotlib.use("Agg")
            _ready = True
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", facecolor="white", metadata={"Software": None})
    finally:
        fig.clear()  # release the artists now; the figure is not registered anywhere else
    return buf.getvalue()


def _style(ax: Any) -> None:
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(GRID)
    ax.tick_params(colors=MUTED, labelsize=9, length=0)
    ax.set_axisbelow(True)


def balance_png(counts: Mapping[str, int], *, title: str = "Labels per tag", labelled: int | None = None) -> bytes:
    """Horizontal bars: final labels per tag, in tag order, with counts and shares. ``labelled``
    (multi-label projects, where an item counts once per tag of its set): the labelled items,
    of which the shares are taken (they need not add up to 100 %)."""
    names = list(counts)
    values = [int(counts[n]) for n in names]
    total = sum(values) if labelled is None else labelled
    fig = _figure(5.6, max(1.6, 0.4 * len(names) + 0.9))
    ax = fig.add_subplot()
    _style(ax)
    if not names:
        ax.text(0.5, 0.5, "no tags", ha="center", va="center", color=MUTED, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        y = list(range(len(names)))[::-1]
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
        ax.barh(y, values, color=colours, height=0.62)
        ax.set_yticks(y, labels=[_short(n) for n in names], color=INK, fontsize=10)
        top = max(values) if values and max(values) > 0 else 1
        ax.set_xlim(0, top * 1.22)
        for yi, v in zip(y, values):
            share = f"  {v:,}  ({v / total:.0%})" if total else "  0"
            ax.text(v, yi, share, va="center", ha="left", fontsize=9, color=INK)
        ax.xaxis.grid(True, color=GRID, linewidth=0.8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{title} ({total:,} labelled)", loc="left", fontsize=11, color=INK, pad=10)
    fig.tight_layout()
    return _png(fig)


def activity_png(per_day: Mapping[str, int], *, title: str = "Labels per day") -> bytes:
    """Vertical bars: human labels per day (``YYYY-MM-DD`` keys, oldest first)."""
    days = list(per_day)
    values = [int(per_day[d]) for d in days]
    fig = _figure(7.0, 2.6)
    ax = fig.add_subplot()
    _style(ax)
    x = list(range(len(days)))
    ax.bar(x, values, color=ACCENT, width=0.75)
    step = max(1, len(days) // 8)
    ax.set_xticks(x[::-1][::step][::-1], labels=[days[i][5:] for i in x[::-1][::step][::-1]], fontsize=8)
    ax.yaxis.grid(True, color=GRID, linewidth=0.8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if not any(values):
        ax.set_ylim(0, 1)
    ax.set_title(f"{title} (last {len(days)} days, UTC)", loc="left", fontsize=11, color=INK, pad=10)
    fig.tight_layout()
    return _png(fig)


def _short(name: str, width: int = 28) -> str:
    """Shortened, and with ``$`` escaped so that matplotlib never reads a tag name as math."""
    name = name if len(name) <= width else name[: width - 1] + "…"
    return name.replace("$", r"\$")


FEW_DAYS = 7  # up to this many days, the progress chart draws bars (a line needs a run of days)


def progress_png(cumulative: Mapping[str, int], *, title: str = "Human labels so far") -> bytes:
    """Cumulative labels per day (``YYYY-MM-DD`` keys, oldest first): a line over many days;
    over a few days (one day of data included) one bar per day, labelled with its total, on an
    axis of at least :data:`FEW_DAYS` slots so that a single bar is not stretched across."""
    days = list(cumulative)
    values = [int(cumulative[d]) for d in days]
    fig = _figure(7.0, 2.6)
    ax = fig.add_subplot()
    _style(ax)
    if not days:
        ax.text(0.5, 0.5, "no labels yet", ha="center", va="center", color=MUTED, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        x = list(range(len(days)))
        top = max(values) or 1
        if len(days) <= FEW_DAYS:
            ax.bar(x, values, color=ACCENT, width=0.6)
            for xi, v in zip(x, values):
                ax.text(xi, v, f"{v:,}", ha="center", va="bottom", fontsize=9, color=INK)
            ax.set_xticks(x, labels=[d if len(days) == 1 else d[5:] for d in days], fontsize=8)
            spare = (FEW_DAYS - len(days)) / 2
            ax.set_xlim(-0.5 - spare, len(days) - 0.5 + spare)
            ax.set_ylim(0, top * 1.2)
        else:
            ax.fill_between(x, values, color=ACCENT, alpha=0.15, linewidth=0)
            ax.plot(x, values, color=ACCENT, linewidth=2, marker="o" if len(days) <= 31 else None, markersize=3)
            step = max(1, len(days) // 8)
            ticks = x[::-1][::step][::-1]
            ax.set_xticks(ticks, labels=[days[i][5:] if len(days) <= 366 else days[i] for i in ticks], fontsize=8)
            ax.set_xlim(-0.5, len(days) - 0.5)
            ax.set_ylim(0, top * 1.1)
        ax.yaxis.grid(True, color=GRID, linewidth=0.8)
        ax.yaxis.get_major_locator().set_params(integer=True)
    total = values[-1] if values else 0
    ax.set_title(f"{title} ({total:,}, per UTC day)", loc="left", fontsize=11, color=INK, pad=10)
    fig.tight_layout()
    return _png(fig)


def quality_curve_png(runs: list[dict[str, Any]], *, sets: bool = False) -> bytes:
    """Model versions against the labels they used: cross-validated accuracy and macro-F1, and
    the audit accuracy with its 95 % interval as a band. Each run: ``labels``, ``cv_accuracy``,
    ``cv_macro_f1``, ``audit_accuracy``, ``audit_low``, ``audit_high`` (None when missing).
    ``sets`` (multi-label): ``cv_accuracy`` holds the CV micro-F1 and ``audit_accuracy`` the share
    of exactly right sets, and the legend says so."""
    fig = _figure(7.2, 3.2)
    ax = fig.add_subplot()
    _style(ax)
    runs = sorted(runs, key=lambda r: r["labels"])
    drawn = False
    for key, colour, marker, name in (("cv_accuracy", PALETTE[0], "o", "CV micro-F1" if sets else "CV accuracy"),
                                      ("cv_macro_f1", PALETTE[1], "s", "CV macro-F1")):
        points = [(r["labels"], r[key]) for r in runs if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker=marker, color=colour, label=name, linewidth=1.6, markersize=4)
            drawn = True
    audited = [r for r in runs if r.get("audit_accuracy") is not None]
    if audited:
        x = [r["labels"] for r in audited]
        banded = [r for r in audited if r.get("audit_low") is not None and r.get("audit_high") is not None]
        if banded:
            bx = [r["labels"] for r in banded]
            low, high = [r["audit_low"] for r in banded], [r["audit_high"] for r in banded]
            ax.fill_between(bx, low, high, color=PALETTE[2], alpha=0.18, linewidth=0, label="audit 95 % interval")
            # whiskers too, so that the interval of a single version shows
            ax.vlines(bx, low, high, color=PALETTE[2], alpha=0.6, linewidth=1.2)
        ax.plot(x, [r["audit_accuracy"] for r in audited], marker="D", color=PALETTE[2], linewidth=1.6,
                markersize=4, label="audit: sets exactly right" if sets else "audit accuracy")
        drawn = True
    if drawn:
        ax.legend(loc="lower right", frameon=False, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no evaluated model yet", ha="center", va="center", color=MUTED, transform=ax.transAxes)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("human labels used", fontsize=9, color=MUTED)
    ax.xaxis.get_major_locator().set_params(integer=True)  # label counts: 40, not 40.0
    ax.yaxis.grid(True, color=GRID, linewidth=0.8)
    ax.set_title("Model quality by version", loc="left", fontsize=11, color=INK, pad=10)
    fig.tight_layout()
    return _png(fig)


def confusion_png(tags: list[str], matrix: list[list[int]], *, title: str = "Which tags labellers confuse",
                  empty: str = "no items labelled by two people yet") -> bytes:
    """A heat map of label pairs between labellers on the same items (symmetric counts); ``empty``
    is said when every count is 0."""
    n = len(tags)
    size = max(3.2, 0.55 * n + 2.0)
    fig = _figure(size + 0.8, size)
    ax = fig.add_subplot()
    total = sum(sum(row) for row in matrix)
    if n == 0 or total == 0:
        _style(ax)
        ax.text(0.5, 0.5, empty, ha="center", va="center", color=MUTED,
                transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        image = ax.imshow(matrix, cmap="Blues", vmin=0)
        labels = [_short(t, 18) for t in tags]
        ax.set_xticks(range(n), labels=labels, rotation=45, ha="right", fontsize=8, color=INK)
        ax.set_yticks(range(n), labels=labels, fontsize=8, color=INK)
        ax.tick_params(length=0)
        top = max(max(row) for row in matrix) or 1
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    value = matrix[i][j]
                    if value:
                        ax.text(j, i, f"{value:,}", ha="center", va="center", fontsize=8,
                                color="white" if value > top * 0.6 else INK)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7, colors=MUTED)
    ax.set_title(title, loc="left", fontsize=11, color=INK, pad=10)
    fig.tight_layout()
    return _png(fig)
