"""A Rich progress bar on standard error, counting bytes or rows."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressBar:
    """``with ProgressBar("importing", total=size, unit="bytes") as bar: bar.set(n)``.

    Shown only when standard error is a terminal (or ``force``), so logs and tests stay clean."""

    def __init__(self, description: str, *, total: int | None, unit: str = "rows", force: bool = False):
        console = Console(stderr=True)
        self.enabled = force or console.is_terminal
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            count,
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not self.enabled,
        )
        self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def set(self, completed: int) -> None:
        self._progress.update(self._task, completed=completed)

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        self._progress.update(self._task, total=total)
