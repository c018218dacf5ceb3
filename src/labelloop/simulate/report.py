"""Terminal output of ``labelloop simulate``: a Rich progress bar and the summary table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from labelloop.simulate.simulation import ProgressHooks

__all__ = ["progress_bar", "summary_table"]


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[ProgressHooks]:
    """Hooks for :func:`labelloop.simulate.simulate` that drive a progress bar of rounds.

    The bar appears when the simulation announces its total, i.e. after its input was checked,
    so that an error is one clean line."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rounds"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )
    task = progress.add_task(description, total=None, start=False)
    started = []

    def start(total: int) -> None:
        progress.update(task, total=total)
        progress.start_task(task)
        progress.start()
        started.append(True)

    try:
        yield (start, lambda n: progress.advance(task, n))
    finally:
        if started:
            progress.stop()


def _labels(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def summary_table(results: dict[str, Any]) -> Table:
    """One row per configuration: AULC and labels to 95 % of full pool, macro-F1 and accuracy
    (label sets: micro-F1 instead of accuracy)."""
    full = results["full_pool"]
    settings = results["settings"]
    first, short = ("micro_f1", "micro-F1") if settings.get("multi_label") else ("accuracy", "accuracy")
    table = Table(
        title=(
            f"model {settings['model']}, {len(settings['seeds'])} seed(s), labels {settings['initial']}"
            f"..{settings['budget']} by {settings['batch']}; full pool: macro-F1 {full['macro_f1']:.3f}, "
            f"{short} {full[first]:.3f}"
        )
    )
    table.add_column("strategy", no_wrap=True)
    for column in ("AULC macro-F1", "labels to 95% F1", f"AULC {short}", f"labels to 95% {short[:5]}.",
                   "final macro-F1"):
        table.add_column(column, justify="right")
    for name, entry in results["summary"].items():
        table.add_row(
            name,
            f"{entry['aulc_macro_f1']:.3f}",
            _labels(entry["labels_to_95pct"]),
            f"{entry[f'aulc_{first}']:.3f}",
            _labels(entry[f"labels_to_95pct_{first}"]),
            f"{entry['final_macro_f1']:.3f}",
        )
    return table
