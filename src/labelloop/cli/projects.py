"""Project verbs: ``init``, ``configure``, ``status``, ``labels ...`` and ``settings``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from labelloop.cli.base import db_option, engine_for, main, settings_for
from labelloop.config import Settings
from labelloop.store import reading, writing
from labelloop.store import projects as store_projects
from labelloop.store import runs as store_runs
from labelloop.store import tags as store_tags
from labelloop.store.items import project_summary


_SETTING_OPTIONS = [
    click.option("--overlap-fraction", type=float, default=None,
                 help="Share of items (0-1) labelled by several people, for agreement (default 0)."),
    click.option("--overlap-k", type=int, default=None, help="Different labellers per overlap item (default 2)."),
    click.option("--audit-fraction", type=float, default=None,
                 help="Share of served items (0-1) drawn at random as audit items (default 0.05)."),
    click.option("--lease-seconds", type=int, default=None,
                 help="How long a served item is held for its labeller (default: $LABELLOOP_LEASE_SECONDS)."),
    click.option("--min-new-labels", type=int, default=None, help="New labels that make a retrain due (default 10)."),
    click.option("--model", default=None, help="Model name, e.g. tfidf-logreg (the default)."),
    click.option("--strategy", default=None, help="Query strategy, e.g. margin (the default)."),
    click.option("--exploration", type=float, default=None,
                 help="Share (0-1) of the queue's head picked at random (default 0.1)."),
    click.option("--class-weight", type=click.Choice(["balanced", "none"]), default=None,
                 help="Class weights of the classifier (default none)."),
    click.option("--show-item-ids/--hide-item-ids", "show_item_ids", default=None,
                 help="Show labellers each item's external id (default: hidden; an id may give the answer away)."),
    click.option("--bulk-training/--no-bulk-training", "bulk_training", default=None,
                 help="Train the model on bulk labels too (default: on)."),
    click.option("--steering", type=click.Choice(["on", "off"]), default=None,
                 help="Whether labellers may steer their queue: search, similar, likely, unsure, random "
                      "(default on; admins always may)."),
    click.option("--gold-fraction", type=float, default=None,
                 help="Share of served items (0-0.5) that are gold items the labeller has not seen (default 0)."),
    click.option("--gold-min-accuracy", type=float, default=None,
                 help="Gold accuracy (0-1) below which a labeller is flagged to admins (default 0.8)."),
]


def setting_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_SETTING_OPTIONS):
        func = option(func)
    return func


def _settings_given(options: dict[str, Any], *, multi_label: bool = False) -> dict[str, Any]:
    """The project settings given on the command line (``--class-weight none`` is None). A
    multi-label project's strategy is one of the set strategies."""
    given = {key: value for key, value in options.items() if value is not None}
    if "steering" in given:
        given["steering"] = given["steering"] == "on"
    if "class_weight" in given:
        given["class_weight"] = None if given["class_weight"] == "none" else given["class_weight"]
    if {"model", "strategy", "class_weight"} & set(given):
        from labelloop.learn import get_model_spec, get_strategy

        if "model" in given:
            get_model_spec(given["model"], class_weight=given.get("class_weight"))
        if "strategy" in given and multi_label:
            from labelloop.orchestrator.compute_sets import set_strategy

            set_strategy(given["strategy"])
        elif "strategy" in given:
            get_strategy(given["strategy"])
    return given


@main.command()
@click.argument("project")
@click.option("--labels", required=True, help='Comma-separated tags in display order, e.g. "A,B,C".')
@click.option("--multi-label", is_flag=True,
              help="Each item gets a set of tags (none, one or several) instead of exactly one; at most "
                   f"{store_projects.MAX_MULTI_LABEL_TAGS} tags, retired ones included. Fixed for the project's life.")
@click.option("--seed", type=int, default=None, help="Seed of the serving order (default: random).")
@setting_options
@db_option
def init(project: str, labels: str, multi_label: bool, seed: int | None, db_url: str | None, **options: Any) -> None:
    """Create PROJECT with an ordered list of tags (an existing project is an error).

    The settings options are those of `configure` (which changes them later)."""
    from labelloop.store.configure import normalise_settings

    values = normalise_settings(_settings_given(options, multi_label=multi_label))
    store_projects.validate_project_name(project)  # before a database is created for nothing
    tags = store_projects.parse_tag_list(labels)
    if multi_label:  # at most 63 tags: refused before a database is created for nothing
        store_projects.check_tag_count(project, used=0, adding=len(tags))
    engine = engine_for(db_url)
    with writing(engine) as conn:
        created = store_projects.create_project(conn, name=project, labels=tags, seed=seed, settings=values,
                                                multi_label=multi_label)
    kind = "multi-label project" if created.multi_label else "project"
    click.echo(f"created {kind} {created.name!r} with tags: {', '.join(created.tag_names)}")


@main.command()
@click.argument("project")
@setting_options
@db_option
def configure(project: str, db_url: str | None, **options: Any) -> None:
    """Show or change PROJECT's settings; with no option, print them.

    Changes are validated (nothing changes on an error), recorded in the audit log and
    printed. A new overlap fraction or k applies at once to every item without a label yet
    (and to items imported later); items with labels keep the number of labellers they had.
    """
    from labelloop.store.configure import configure_project, effective_settings

    settings = settings_for(db_url)
    engine = engine_for(db_url, create=False)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
    values = _settings_given(options, multi_label=proj.multi_label)
    if not values:
        # multi_label is fixed at `init` (tag sets or single tags): shown, never changed here. A
        # single-label project's listing stays as it always was.
        if proj.multi_label:
            click.echo("multi_label: true (fixed when the project was created)")
        for key, value in effective_settings(proj).items():
            click.echo(f"{key}: {_show(key, value, settings)}")
        return
    with writing(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        done = configure_project(conn, project=proj, values=values)
    if not done.changes:
        click.echo("nothing changed")
    for key, (old, new) in done.changes.items():
        click.echo(f"{key}: {_show(key, old, settings)} -> {_show(key, new, settings)}")
    if "overlap_fraction" in done.changes or "overlap_k" in done.changes:
        click.echo(f"{done.retargeted:,} unlabelled items got a new number of labellers")


def _show(key: str, value: Any, settings: Settings) -> str:
    """A setting's value for people; one left to the environment shows its effective value."""
    if key == "steering":
        return "on" if value else "off"
    if value is None:
        return f"{settings.lease_seconds} (from LABELLOOP_LEASE_SECONDS)" if key == "lease_seconds" else "none"
    return str(value)


@main.command()
@click.argument("project")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@db_option
def status(project: str, as_json: bool, db_url: str | None) -> None:
    """Show PROJECT's progress: items, labelled items, labels per tag, the model, its audit
    estimate (accuracy on random held-out items, 95 % CI), the stopping advice and agreement
    (multi-label projects: micro/macro-F1, exactly right sets, per-tag F1 and alpha)."""
    from labelloop.orchestrator.gold import gold_report
    from labelloop.orchestrator.quality import agreement_figures, sets_summary, status_summary

    engine = engine_for(db_url, create=False)
    with reading(engine) as conn:
        proj = store_projects.get_project(conn, name=project)
        summary = project_summary(conn, project=proj)
        summary["model"] = store_runs.current_model(conn, project_id=proj.id)
        summary.update(store_runs.quality_summary(conn, project_id=proj.id))  # audit, advice
        summary["agreement"] = status_summary(agreement_figures(conn, project=proj))
        if proj.multi_label:
            summary["sets"] = sets_summary(conn, project=proj)
        gold = gold_report(conn, project=proj)
        summary["gold_items"], summary["gold"] = gold["items"], gold["labellers"]
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    console = Console()
    share = summary["labelled"] / summary["items"] if summary["items"] else 0.0
    console.print(
        f"{proj.name}: {summary['labelled']:,} of {summary['items']:,} items labelled ({share:.1%})",
        soft_wrap=True,
    )
    table = Table()
    table.add_column("tag")
    table.add_column("labels", justify="right")
    table.add_column("share", justify="right")
    total = max(summary["labelled"], 1)
    for tag, count in summary["labels"].items():
        table.add_row(tag, f"{count:,}", f"{count / total:.1%}")
    if summary["conflicts"]:
        table.add_row("(conflicts)", f"{summary['conflicts']:,}", "")
    console.print(table)
    model, sets = summary["model"], summary.get("sets")
    if model is None:
        console.print("model: none yet (run `labelloop orchestrate`)")
    elif sets is not None:
        score = (f", CV micro-F1 {sets['micro_f1']:.3f}, macro-F1 {sets['macro_f1']:.3f}, "
                 f"{sets['subset_accuracy']:.1%} of sets exactly right, Hamming loss {sets['hamming_loss']:.3f}"
                 if sets["micro_f1"] is not None else ", not cross-validated yet")
        console.print(f"model: version {model['version']} from {model['labels_used']:,} labels{score}", soft_wrap=True)
    else:
        cv = model["cv"]
        score = f", CV accuracy {cv['accuracy']:.3f}, macro-F1 {cv['macro_f1']:.3f}" if cv else ", not cross-validated yet"
        console.print(f"model: version {model['version']} from {model['labels_used']:,} labels{score}", soft_wrap=True)
    audit = summary["audit"]
    if sets is not None and sets["audit"]:
        audit = {**audit, "micro_f1": sets["audit"]["micro_f1"], "intervals": sets["audit"]["intervals"]}
    _print_audit(console, audit, summary["advice"])
    agree = summary["agreement"]
    if agree["items_with_overlap"]:
        alpha = agree["krippendorff_alpha"]
        which = " (MASI distance between sets)" if agree.get("alpha_metric") == "masi" else ""
        console.print(f"agreement: {agree['items_with_overlap']:,} items labelled by several people, "
                      f"{agree['percent']:.1%} of label pairs agree, Krippendorff's alpha{which} "
                      f"{'undefined' if alpha is None else f'{alpha:.3f}'}", soft_wrap=True)
    if sets is not None or agree.get("alpha_per_tag"):
        _print_tag_figures(console, sets, agree.get("alpha_per_tag") or {})
    if summary["gold"]:
        _print_gold(console, gold)


def _print_gold(console: Console, gold: dict[str, Any]) -> None:
    """Each labeller's accuracy on gold items, with its 95 % interval; flagged ones marked."""
    table = Table(title=f"gold items ({gold['items']:,}; flagged below {gold['min_accuracy']:.0%})")
    for column in ("labeller", "answered", "correct", "accuracy", "95 % interval", "flagged"):
        table.add_column(column, justify="left" if column in ("labeller", "flagged") else "right")
    for name, g in gold["labellers"].items():
        table.add_row(name, f"{g['answered']:,}", f"{g['correct']:,}", f"{g['accuracy']:.1%}",
                      f"{g['ci95'][0]:.1%} – {g['ci95'][1]:.1%}", "FLAGGED" if g["flagged"] else "")
    console.print(table)


def _print_tag_figures(console: Console, sets: dict[str, Any] | None, alphas: dict[str, float | None]) -> None:
    """Multi-label projects: each tag's CV F1 and threshold, and its agreement (binary alpha)."""
    per_tag = (sets or {}).get("per_tag") or {}
    table = Table()
    for column in ("tag", "CV F1", "threshold", "alpha"):
        table.add_column(column, justify="left" if column == "tag" else "right")

    def number(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    for tag in dict.fromkeys([*per_tag, *alphas]):
        figures = per_tag.get(tag, {})
        table.add_row(tag, number(figures.get("f1")), number(figures.get("threshold")), number(alphas.get(tag)))
    console.print(table)


def _print_audit(console: Console, audit: dict[str, Any], advice: dict[str, Any] | None) -> None:
    """The audit estimate (beside the CV score, which reads actively chosen, harder items), only
    with its interval and from enough audit items, and the advice."""
    from labelloop.orchestrator.quality import audit_view

    if audit["labelled"] or advice is not None:  # a model to estimate
        console.print(f"audit estimate: {audit_view(audit)['line']}", soft_wrap=True)
    if advice is not None:
        console.print(f"advice: {advice['message']}", soft_wrap=True)


@main.group("labels")
def labels_group() -> None:
    """Change PROJECT's tags mid-project: add, rename, merge, retire.

    Every change is recorded in the audit log and requests a retrain; labels are never lost
    (a retired tag's labels are kept for history but no longer count).
    """


def _tag_change(project: str, db_url: str | None, change: Callable[[Any, Any], Any]) -> Any:
    engine = engine_for(db_url, create=False)
    try:
        with writing(engine) as conn:
            return change(conn, store_projects.get_project(conn, name=project))
    finally:
        engine.dispose()


@labels_group.command("add")
@click.argument("project")
@click.argument("name")
@db_option
def labels_add(project: str, name: str, db_url: str | None) -> None:
    """Add tag NAME at the end of PROJECT's order (the name of a retired tag reactivates it)."""
    outcome = _tag_change(project, db_url, lambda conn, p: store_tags.add_tag(conn, project=p, name=name, user_id=None))
    click.echo(f"{outcome} tag {name!r} in project {project!r}")


@labels_group.command("rename")
@click.argument("project")
@click.argument("old")
@click.argument("new")
@db_option
def labels_rename(project: str, old: str, new: str, db_url: str | None) -> None:
    """Rename tag OLD to NEW; its labels follow it."""
    _tag_change(project, db_url, lambda conn, p: store_tags.rename_tag(conn, project=p, old=old, new=new, user_id=None))
    click.echo(f"renamed tag {old!r} to {new!r} in project {project!r}")


@labels_group.command("merge")
@click.argument("project")
@click.argument("source", metavar="FROM")
@click.argument("into", metavar="INTO")
@db_option
def labels_merge(project: str, source: str, into: str, db_url: str | None) -> None:
    """Move every label (and adjudication) of tag FROM to tag INTO, then retire FROM."""
    counts = _tag_change(project, db_url,
                         lambda conn, p: store_tags.merge_tags(conn, project=p, source=source, into=into, user_id=None))
    click.echo(f"merged {source!r} into {into!r}: {counts['annotations']:,} labels on {counts['items']:,} items "
               f"moved; {source!r} is retired")


@labels_group.command("retire")
@click.argument("project")
@click.argument("tag")
@db_option
def labels_retire(project: str, tag: str, db_url: str | None) -> None:
    """Stop offering TAG; its labels are kept but no longer count (items labelled only with it
    go back to the queue for other labellers)."""
    counts = _tag_change(project, db_url,
                         lambda conn, p: store_tags.retire_tag(conn, project=p, name=tag, user_id=None))
    click.echo(f"retired {tag!r}: {counts['items']:,} items recomputed, {counts['reopened']:,} back in the queue")


@main.command("settings")
def settings_cmd() -> None:
    """List every LABELLOOP_* setting with its default and meaning."""
    for name, default, doc in Settings.documentation():
        click.echo(f"{name} (default: {default})\n    {doc}")
