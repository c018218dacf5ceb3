"""Verbs that run things: ``demo``, ``serve``, ``orchestrate`` and ``simulate``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
from rich.console import Console
from sqlalchemy import Engine

from labelloop.cli.base import db_option, engine_for, main, settings_for
from labelloop.store import reading
from labelloop.store import users as store_users


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on.")
@click.option("--no-serve", is_flag=True, help="Only set up the project and the admin user.")
@db_option
def demo(host: str, port: int, no_serve: bool, db_url: str | None) -> None:
    """Create project bbc-news (2,225 BBC articles, unlabelled) and user admin, then serve."""
    from labelloop.io.demo_data import DEMO_ADMIN, DEMO_PROJECT, setup_demo

    settings = settings_for(db_url)
    engine = engine_for(db_url)
    try:
        setup = setup_demo(engine, settings)
        _hint_if_no_users(engine)
    finally:
        engine.dispose()
    if setup.imported is not None:
        click.echo(f"created project {DEMO_PROJECT!r} with {setup.imported.imported:,} unlabelled articles")
    else:
        click.echo(f"project {DEMO_PROJECT!r} exists already; left as it is")
    if setup.admin_password is not None:
        click.echo(f"created admin {DEMO_ADMIN!r}; password (shown once): {setup.admin_password}")
    else:
        click.echo(f"user {DEMO_ADMIN!r} exists already; log in with its password")
    if no_serve:
        return
    from labelloop.server import serve

    click.echo(f"serving on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    serve(settings, host=host, port=port, workers=1, orchestrate=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes (each with its own single database writer).")
@click.option("--orchestrate", is_flag=True, help="Also run the orchestrator (retraining) in this process.")
@db_option
def serve(host: str, port: int, workers: int, orchestrate: bool, db_url: str | None) -> None:
    """Serve the labelling pages and the JSON API (OpenAPI at /docs) until Ctrl+C or SIGTERM.

    Stopping lets the requests in flight finish (at most $LABELLOOP_SHUTDOWN_TIMEOUT seconds)
    and commits every queued write; the exit status is then 0. One log line per request on
    stderr ($LABELLOOP_LOG_FORMAT: text or json)."""
    from labelloop.server import serve as run_server

    settings = settings_for(db_url)
    engine = engine_for(db_url)  # migrate once here, not in every worker
    try:
        _hint_if_no_users(engine)
    finally:
        engine.dispose()
    click.echo(f"serving on http://{host}:{port}/ with {workers} worker(s) (Ctrl+C to stop)", err=True)
    run_server(settings, host=host, port=port, workers=workers, orchestrate=orchestrate)


def _hint_if_no_users(engine: Engine) -> None:
    """Say how to create the first user (no one can log in without one)."""
    with reading(engine) as conn:
        if store_users.list_users(conn):
            return
    click.echo("no users yet, so no one can log in: create an admin with "
               "`labelloop user add NAME --role admin` (it prints a password once)", err=True)


@main.command()
@click.argument("project", required=False)
@click.option("--all", "all_projects", is_flag=True, help="Watch every project (one pass over all per interval).")
@click.option("--once", is_flag=True, help="Run one round now and exit (fails if another orchestrator holds PROJECT).")
@click.option("--interval", type=click.FloatRange(min=0.1), default=None,
              help="Seconds between checks for new labels (default: $LABELLOOP_ORCHESTRATE_INTERVAL, 30).")
@click.option("--min-new-labels", type=click.IntRange(min=1), default=None,
              help="Retrain after this many new labels (default: the project's setting, 10).")
@click.option("--model", default=None, help="Model name, e.g. tfidf-logreg (default: the project's setting).")
@click.option("--strategy", default=None, help="Query strategy, e.g. margin (default: the project's setting).")
@db_option
def orchestrate(project: str | None, all_projects: bool, once: bool, interval: float | None, min_new_labels: int | None, model: str | None,
                strategy: str | None, db_url: str | None) -> None:
    """Retrain PROJECT's model as labels arrive and reorder its queue, until stopped.

    One orchestrator per project: a second one waits for the first (with --once it fails at
    once). SIGTERM or Ctrl+C abandons a round in progress cleanly; the last complete version
    keeps serving. An admin's "retrain now" starts a round at the next check. With --all
    (deployment), every project is watched by this one process.
    """
    if all_projects == (project is not None):
        raise click.UsageError("give either PROJECT or --all")
    import signal
    import threading

    from labelloop.logs import configure_logging
    from labelloop.orchestrator import orchestrate as run_orchestrator

    settings = settings_for(db_url)
    undo_logging = configure_logging(level=settings.log_level, fmt=settings.log_format)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    if all_projects:
        from labelloop.orchestrator import run_forever

        if interval is not None:
            settings = dataclasses.replace(settings, orchestrate_interval=interval)
        engine = None
        try:
            engine = engine_for(db_url, create=False)
            run_forever(settings, stop, engine=engine, mode="all")
        finally:
            if engine is not None:
                engine.dispose()
            for sig, old in previous.items():
                signal.signal(sig, old)
            undo_logging()
        return
    try:
        results = run_orchestrator(engine_for(db_url, create=False), settings, project=project, once=once, interval=interval,
                                   min_new_labels=min_new_labels, model=model, strategy=strategy, stop=stop)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        undo_logging()
    if once and results:
        result = results[0]
        if result.status != "complete":
            raise click.exceptions.Exit(1)
        click.echo(f"version {result.version}: {result.state}, {result.labels_used:,} labels, "
                   f"{result.scored:,} items scored in {result.timings.get('total', 0.0):.1f}s")


@main.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--text-columns", required=True, help="Comma-separated columns the model reads, e.g. title,body.")
@click.option("--label-column", required=True, help="Column with the true tag (the oracle).")
@click.option("--label-separator", default=None,
              help='Multi-label: the label column holds tags joined by this, e.g. "|".')
@click.option("--none-value", default="__none__", show_default=True,
              help="Multi-label: the label cell meaning that no tag applies.")
@click.option("--strategy", "strategies", default="default,random", show_default=True,
              help="Comma-separated configurations: default, superintendent, random, entropy, margin, "
                   "least-confidence (multi-label: default, max-uncertainty, mean-uncertainty, random), "
                   "likely:TAG, unsure:TAG (the steered queues); "
                   "each optionally +explore=F, +diverse, +no-diverse.")
@click.option("--model", default=None, help="Model name (default: what a new project uses).")
@click.option("--seeds", type=int, default=3, show_default=True, help="Runs per strategy (seeds 0..N-1).")
@click.option("--initial", type=int, default=10, show_default=True, help="Labels taken from the cold-start order.")
@click.option("--batch", type=int, default=10, show_default=True, help="Labels taken per round.")
@click.option("--budget", type=int, default=500, show_default=True, help="Labels per run in total.")
@click.option("--test-fraction", type=float, default=0.3, show_default=True,
              help="Share of FILE held out (stratified) as the test set.")
@click.option("--test-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Use this file as the test set and all of FILE as the pool.")
@click.option("--cv-every", type=int, default=1, show_default=True,
              help="Cross-validate the labelled items every N rounds (0: never).")
@click.option("--jobs", type=int, default=None, help="Worker processes (default: the available cores).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("results.json"),
              show_default=True, help="Where to write the results (JSON).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the learning curves and the CV drift into this PNG.")
def simulate_cmd(file: Path, text_columns: str, label_column: str, label_separator: str | None, none_value: str,
                 strategies: str, model: str | None, seeds: int,
                 initial: int, batch: int, budget: int, test_fraction: float, test_file: Path | None,
                 cv_every: int, jobs: int | None, out: Path, plot: Path | None) -> None:
    """Simulate labelling FILE with its own labels as the oracle and compare strategies.

    FILE is split (stratified) into a pool and a test set. Each strategy and seed labels
    --initial items in cold-start order, then retrains, scores the test set and takes the next
    --batch items of the serving order, up to --budget. No database is used.

    With --label-separator, FILE is multi-label (tags joined by the separator; split at random,
    not stratified): curves report micro-F1 beside macro-F1, and the strategies are set strategies.
    """
    from labelloop import simulate as sim
    from labelloop.simulate.report import progress_bar, summary_table

    queries = sim.parse_strategies(strategies, multi_label=label_separator is not None)
    columns = [c.strip() for c in text_columns.split(",") if c.strip()]
    dataset = sim.load_dataset(file, text_columns=columns, label_column=label_column,
                               test_fraction=test_fraction, test_file=test_file,
                               label_separator=label_separator, none_value=none_value)
    console = Console(stderr=True)
    with progress_bar(console, f"simulating {file.name}") as hooks:
        results = sim.simulate(dataset, queries, model=model, seeds=seeds, initial=initial, batch=batch,
                               budget=budget, cv_every=cv_every, processes=jobs, progress=hooks)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    if plot is not None:
        sim.plot_results(results, plot)
    Console(width=max(Console().width, 110)).print(summary_table(results))
    click.echo(f"results written to {out}" + (f", plot to {plot}" if plot else ""), err=True)
