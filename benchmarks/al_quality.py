"""Active-learning quality: every strategy and model, 3 seeds, on the shared labelled data sets.

    .venv/bin/python benchmarks/al_quality.py [--plot] [--write-results] [--processes 2]

Each (data set, model, strategy, seed) run is a `labelloop simulate` run (the orchestrator's
own round code, an oracle answering from the file's labels), cached as JSON under
`benchmarks/.cache/al_quality/`, so the benchmark resumes where it stopped; features are
cached there too. Phases, cheapest and most important first: (1) default, random and the
superintendent baseline with tf-idf, (2) the other strategies with tf-idf, (3) everything with
embeddings, (4) ablations of the default (exploration, diversity, strategy), (7) the
multi-label data set (Debtags): the default set strategy against random and the alternative
set strategy, scored by micro-F1 (`--datasets debian_tags --phases 7`).

Prints JSON (per data set and model: full-pool scores and the summary of every strategy, plus
the goal check); `--plot` draws `benchmarks/plots/al_<data set>_<model>.png`;
`--write-results` replaces the "Active-learning quality" section of `benchmarks/RESULTS.md`.
`--report-only` runs nothing and reports what is cached.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

import labelloop.learn
import labelloop.orchestrator.compute
import labelloop.simulate
from labelloop.simulate.data import Dataset, load_dataset
from labelloop.simulate.presets import parse_strategies
from labelloop.simulate.runner import Job, Shared, available_cores, compute_features, run_jobs
from labelloop.simulate.simulation import build_results
from labelloop.store.projects import PROJECT_SETTINGS_DEFAULTS


def code_fingerprint() -> str:
    """A short hash of the code a run's result depends on (read right after importing it):
    learn/, the orchestrator's round, the simulation's loop and the project defaults. Cached runs
    and features live under it, so a change of any of them starts afresh."""
    files = sorted(Path(labelloop.learn.__file__).parent.glob("*.py"))
    simulate_dir = Path(labelloop.simulate.__file__).parent
    files += [simulate_dir / f"{name}.py" for name in ("data", "presets", "rounds", "runner")]
    files.append(Path(labelloop.orchestrator.compute.__file__))
    digest = hashlib.sha256(json.dumps(PROJECT_SETTINGS_DEFAULTS, sort_keys=True, default=str).encode())
    for path in files:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


CODE = code_fingerprint()

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LABELLOOP_DATASETS", ROOT.parent / "shared" / "datasets"))
CACHE = ROOT / "benchmarks" / ".cache" / "al_quality"
PLOTS = ROOT / "benchmarks" / "plots"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"

DATASETS: dict[str, dict[str, Any]] = {
    "bbc_news": {"file": "bbc_news.csv", "text": ["title", "body"]},
    "trec6": {"file": "trec6.csv", "text": ["text"]},
    "sms_spam": {"file": "sms_spam.csv", "text": ["text"]},
    "20ng": {"file": "20ng_train.csv", "test": "20ng_test.csv", "text": ["text"]},
}
# Multi-label data sets (phase 7 only): their own budget and batch (42 tags need thousands of
# labels to approach the full-pool score) and the set strategies.
MULTI_DATASETS: dict[str, dict[str, Any]] = {
    "debian_tags": {"file": "debian_tags.csv", "text": ["title", "text"], "label": "labels", "separator": "|",
                    "budget": 3000, "batch": 50},
}
SET_STRATEGIES = ["default", "random", "mean-uncertainty"]
CORE = ["default", "random", "superintendent"]
OTHERS = ["margin", "entropy", "least-confidence"]
ABLATIONS = [
    "margin+diverse",                   # default without exploration
    "margin+explore=0.1",               # default without diversity
    "margin+explore=0.2+diverse",
    "entropy+explore=0.1+diverse",
    "least-confidence+explore=0.1+diverse",
]
TFIDF_ONLY = {"superintendent"}  # superintendent's baseline is defined with TF-IDF + logistic regression
# Phase 5: where the budget of 500 is too small to see 95 % of full pool, the core strategies
# again with a larger budget (the first 500 labels of such a run are those of the 500 run).
EXTENDED_BUDGETS = {"trec6": 2000, "sms_spam": 1000, "20ng": 3000}
EXTENDED_STRATEGIES = {"20ng": ["default", "random"]}  # 20ng's rounds are slow: only what the goal needs
# Phase 6 (run on its own with more seeds, e.g. --seeds 10 --phases 6 --datasets trec6,sms_spam,bbc_news
# --section al_quality_seeds10): the candidate defaults, where 3 seeds leave the ranking to noise.
CANDIDATES = ["default", "random", "superintendent", "margin+diverse", "margin+explore=0.1",
              "margin+explore=0.2+diverse"]


def phases(models: list[str]) -> list[tuple[int, str, list[str]]]:
    """(phase number, model, strategies); phase 5 (extended budgets) is run apart."""
    main, extra = models[0], models[1:]
    plan = [(1, main, CORE), (2, main, OTHERS)]
    plan += [(3, m, [s for s in CORE + OTHERS if s not in TFIDF_ONLY]) for m in extra]
    plan += [(4, main, ABLATIONS), (6, main, CANDIDATES)]
    return plan


def extended_key(name: str, model: str, budget: int) -> str:
    return f"{name}/{model}/budget {budget}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Group:
    """One (data set, model): its dataset, cached features and cached runs."""

    def __init__(self, name: str, model: str, args: argparse.Namespace, budget: int | None = None):
        self.name, self.model, self.args = name, model, args
        spec = DATASETS.get(name) or MULTI_DATASETS[name]
        self.multi_label = "separator" in spec
        self.budget = budget or spec.get("budget", args.budget)
        self.batch = spec.get("batch", args.batch)
        self.cv_every = 0 if self.multi_label else args.cv_every  # the test-set curve is what is scored
        self.dataset: Dataset = load_dataset(
            SHARED / spec["file"], text_columns=spec["text"], label_column=spec.get("label", "label"),
            test_file=SHARED / spec["test"] if "test" in spec else None, label_separator=spec.get("separator"),
        )
        self.dir = CACHE / CODE / name / model
        self.runs_dir = self.dir / f"budget{self.budget}_initial{args.initial}_batch{self.batch}_cv{self.cv_every}"

    def features(self) -> tuple[Any, Any]:
        paths = [self.dir / "pool.npz", self.dir / "test.npz"]
        if all(p.exists() for p in paths):
            return tuple(_load_matrix(p) for p in paths)  # type: ignore[return-value]
        started = time.perf_counter()
        pool, test = compute_features(self.dataset, [self.model])[self.model]
        self.dir.mkdir(parents=True, exist_ok=True)
        for path, matrix in zip(paths, (pool, test)):
            _save_matrix(path, matrix)
        log(f"{self.name}/{self.model}: features {pool.shape} in {time.perf_counter() - started:.0f}s")
        return pool, test

    def run_path(self, strategy: str, seed: int) -> Path:
        return self.runs_dir / strategy / f"seed{seed}.json"

    def shared(self) -> Shared:
        return self._shared({self.model: self.features()})

    def _shared(self, features: dict[str, Any]) -> Shared:
        return Shared(
            features=features, pool_tags=self.dataset.pool_tags,
            test_tags=self.dataset.test_tags, tags=self.dataset.tags, initial=self.args.initial,
            batch=self.batch, budget=self.budget, cv_every=self.cv_every,
            class_weight=PROJECT_SETTINGS_DEFAULTS["class_weight"], multi_label=self.multi_label,
        )

    def run(self, strategies: list[str]) -> None:
        queries = parse_strategies(strategies, multi_label=self.multi_label)
        full_path = self.dir / "full_pool.json"
        jobs = [] if full_path.exists() else [Job(self.model)]
        jobs += [Job(self.model, q, s) for q in queries for s in range(self.args.seeds)
                 if not self.run_path(q.name, s).exists()]
        if not jobs:
            return
        log(f"{self.name}/{self.model}: {len(jobs)} job(s) to run")

        def save(i: int, result: dict[str, Any]) -> None:
            job = jobs[i]
            path = full_path if job.query is None else self.run_path(job.query.name, job.seed)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".tmp").write_text(json.dumps(result))
            path.with_suffix(".tmp").replace(path)
            what = "full pool" if job.query is None else f"{job.query.name} seed {job.seed}"
            final = result["macro_f1"] if job.query is None else result["curve"][-1][2]
            seconds = result.get("seconds", 0.0)
            log(f"{self.name}/{self.model}: {what} done (macro-F1 {final:.3f}, {seconds:.0f}s)")

        run_jobs(self.shared(), jobs, processes=self.args.processes, on_result=save)

    def results(self) -> dict[str, Any] | None:
        """The results document of every cached run (None without the full-pool reference)."""
        full_path = self.dir / "full_pool.json"
        if not full_path.exists():
            return None
        runs = []
        for strategy_dir in sorted(p for p in self.runs_dir.glob("*") if p.is_dir()):
            for seed in range(self.args.seeds):
                path = strategy_dir / f"seed{seed}.json"
                if path.exists():
                    runs.append(json.loads(path.read_text()))
        shared = self._shared({})
        return build_results(self.dataset, shared, model=self.model, seeds=self.args.seeds,
                             full_pool=json.loads(full_path.read_text()), runs=runs)


def adopt(old: str, args: argparse.Namespace) -> None:
    """Reuse the cache of fingerprint ``old`` for the current code if the code change did not
    change results: a few cached runs are re-run now and must be bit-identical."""
    source = CACHE / old
    target = CACHE / CODE
    if target.exists():
        raise SystemExit(f"{target} exists already")
    canaries = [("sms_spam", "default", 0), ("trec6", "margin", 1), ("bbc_news", "random", 2)]
    checked = 0
    for name, strategy, seed in canaries:
        group = Group(name, "tfidf-logreg", args)
        cached = group.runs_dir.relative_to(CACHE / CODE)
        path = source / cached / strategy / f"seed{seed}.json"
        if not path.exists():
            continue
        old_run = json.loads(path.read_text())
        group.dir = source / name / "tfidf-logreg"  # its cached features
        (query,) = parse_strategies(strategy)
        new_run = run_jobs(group.shared(), [Job("tfidf-logreg", query, seed)])[0]
        if (new_run["curve"], new_run["cv"], new_run["labelled"]) != (old_run["curve"], old_run["cv"], old_run["labelled"]):
            raise SystemExit(f"{name} {strategy} seed {seed} differs under {CODE}: the cache of {old} cannot be adopted")
        checked += 1
        log(f"{name} {strategy} seed {seed}: identical under {CODE}")
    if not checked:
        raise SystemExit(f"no canary run cached under {old}")
    target.symlink_to(source.name)
    log(f"{target} -> {source.name}")


def _save_matrix(path: Path, matrix: Any) -> None:
    if sp.issparse(matrix):
        sp.save_npz(path, matrix.tocsr(), compressed=False)
    else:
        np.savez(path, dense=np.asarray(matrix))


def _load_matrix(path: Path) -> Any:
    with np.load(path, allow_pickle=False) as data:
        if "dense" in data.files:
            return data["dense"]
    return sp.load_npz(path).tocsr()


def goal_check(documents: dict[str, dict[str, Any]], model: str) -> dict[str, Any]:
    """The issue's goal for the default configuration, with model ``model``, per data set."""
    per_dataset: dict[str, Any] = {}
    ratios = []
    for key, doc in documents.items():
        name, doc_model, *extended = key.split("/")
        summary = doc["summary"]
        if doc["settings"].get("multi_label") or extended or doc_model != model or not {"default", "random"} <= set(summary):
            continue
        budget = doc["settings"]["budget"]
        default, random = summary["default"], summary["random"]
        longer = next((d for k, d in documents.items() if k.startswith(f"{name}/{model}/")), None)
        if longer is not None and {"default", "random"} <= set(longer["summary"]):
            # the same runs continued to a larger budget: their labels-to-95 % are the same
            # where reached within the budget, and known beyond it
            budget = longer["settings"]["budget"]
            default, random = longer["summary"]["default"], longer["summary"]["random"]
        entry: dict[str, Any] = {
            "labels_budget": budget,
            "default_labels_to_95pct": default["labels_to_95pct"],
            "random_labels_to_95pct": random["labels_to_95pct"],
            "aulc_default": summary["default"]["aulc_macro_f1"],
            "aulc_random": summary["random"]["aulc_macro_f1"],
            "aulc_beats_random": summary["default"]["aulc_macro_f1"] > summary["random"]["aulc_macro_f1"],
        }
        if "superintendent" in summary:
            entry["aulc_superintendent"] = summary["superintendent"]["aulc_macro_f1"]
            entry["aulc_beats_superintendent"] = (
                summary["default"]["aulc_macro_f1"] > summary["superintendent"]["aulc_macro_f1"]
            )
        if default["labels_to_95pct"] is None:
            entry["label_ratio"] = None  # the default never got there: the goal fails here
            entry["label_ratio_note"] = "default does not reach 95% of full pool within the budget"
        else:
            random_need = random["labels_to_95pct"] if random["labels_to_95pct"] is not None else budget
            entry["label_ratio"] = default["labels_to_95pct"] / random_need
            if random["labels_to_95pct"] is None:
                entry["label_ratio_note"] = f"upper bound: random needs more than the budget ({budget})"
        ratios.append(entry["label_ratio"])
        per_dataset[name] = entry
    known = [r for r in ratios if r is not None]
    return {
        "model": model,
        "per_dataset": per_dataset,
        "mean_label_ratio": float(np.mean(known)) if known and len(known) == len(ratios) else None,
        "mean_label_ratio_where_reached": float(np.mean(known)) if known else None,
        "datasets_not_reached_by_default": [n for n, e in per_dataset.items() if e["label_ratio"] is None],
        "label_ratio_goal_met": bool(known) and len(known) == len(ratios) and float(np.mean(known)) <= 0.5,
        "aulc_goal_met": bool(per_dataset) and all(
            e["aulc_beats_random"] and e.get("aulc_beats_superintendent", False) for e in per_dataset.values()
        ),
    }


def set_goal_check(documents: dict[str, dict[str, Any]], model: str) -> dict[str, Any]:
    """Issue 12's goal on the multi-label data sets: the default set strategy beats random's
    micro-F1 AULC; with labels to 95 % of the full-pool micro-F1 of default, random and the
    best alternative."""
    per_dataset: dict[str, Any] = {}
    for key, doc in documents.items():
        name, doc_model = key.split("/")[:2]
        summary = doc["summary"]
        if not doc["settings"].get("multi_label") or doc_model != model or not {"default", "random"} <= set(summary):
            continue
        others = {k: v for k, v in summary.items() if k not in ("default", "random")}
        best = max(others, key=lambda k: others[k]["aulc_micro_f1"]) if others else None
        entry = {
            "labels_budget": doc["settings"]["budget"],
            "full_pool_micro_f1": doc["full_pool"]["micro_f1"],
            **{f"aulc_micro_f1_{k}": summary[k]["aulc_micro_f1"] for k in summary},
            **{f"labels_to_95pct_micro_f1_{k}": summary[k]["labels_to_95pct_micro_f1"] for k in summary},
            "best_alternative": best,
            "aulc_beats_random": summary["default"]["aulc_micro_f1"] > summary["random"]["aulc_micro_f1"],
        }
        per_dataset[name] = entry
    return {"model": model, "per_dataset": per_dataset,
            "aulc_goal_met": bool(per_dataset) and all(e["aulc_beats_random"] for e in per_dataset.values())}


def markdown(documents: dict[str, dict[str, Any]], goals: dict[str, Any], args: argparse.Namespace) -> str:
    start, end = f"<!-- {args.section}:start -->", f"<!-- {args.section}:end -->"
    extra = "" if args.section == "al_quality" else f" --section {args.section} --seeds {args.seeds} --phases {args.phases} --datasets {args.datasets}"
    lines = [
        start,
        f"## Active-learning quality (`benchmarks/al_quality.py`{', ' + str(args.seeds) + ' seeds' if extra else ''})",
        "",
        f"Command: `.venv/bin/python benchmarks/al_quality.py --plot --write-results --processes {args.processes}{extra}` "
        f"(budget {args.budget}, {args.initial} cold-start labels, batches of {args.batch}, {args.seeds} seeds, "
        f"CV every {args.cv_every} rounds). Machine: {available_cores()} cores ({platform.machine()}, "
        f"Python {platform.python_version()}), shared with other jobs; code fingerprint `{CODE}`. Test sets: a stratified 30 % of each file "
        "(split seed 0), `20ng_test.csv` for 20 newsgroups. AULC = area under the test macro-F1 curve divided by "
        "the label range (mean over seeds); \"labels to 95 %\" = median over seeds of the labels needed to reach "
        "95 % of the full-pool macro-F1 (\"-\": not within the budget). Plots: `benchmarks/plots/al_<data set>_<model>.png`.",
        "",
    ]
    for key, doc in documents.items():
        full = doc["full_pool"]
        if doc["settings"].get("multi_label"):
            lines += _set_table(key, doc)
            continue
        lines += [
            f"### {key} (full pool: macro-F1 {full['macro_f1']:.3f}, accuracy {full['accuracy']:.3f}; "
            f"pool {doc['dataset']['pool_size']:,}, test {doc['dataset']['test_size']:,})",
            "",
            "| strategy | seeds | AULC macro-F1 | labels to 95 % F1 | AULC accuracy | labels to 95 % acc. | macro-F1 at budget |",
            "|---|---|---|---|---|---|---|",
        ]
        ranked = sorted(doc["summary"].items(), key=lambda item: -item[1]["aulc_macro_f1"])
        for name, entry in ranked:
            def labels(value: float | None) -> str:
                return "-" if value is None else f"{value:.0f}"

            lines.append(
                f"| {name} | {len(entry['seeds'])} | {entry['aulc_macro_f1']:.3f} ± {entry['aulc_macro_f1_std']:.3f} | "
                f"{labels(entry['labels_to_95pct'])} | {entry['aulc_accuracy']:.3f} | "
                f"{labels(entry['labels_to_95pct_accuracy'])} | {entry['final_macro_f1']:.3f} |"
            )
        lines.append("")
    lines += ["### Goal check", "", "```json", json.dumps(goals, indent=1), "```", "", end]
    return "\n".join(lines)


def _set_table(key: str, doc: dict[str, Any]) -> list[str]:
    full, settings = doc["full_pool"], doc["settings"]
    lines = [
        f"### {key}, multi-label (full pool: micro-F1 {full['micro_f1']:.3f}, macro-F1 {full['macro_f1']:.3f}; "
        f"pool {doc['dataset']['pool_size']:,}, test {doc['dataset']['test_size']:,}, "
        f"{len(doc['dataset']['tags'])} tags; budget {settings['budget']}, batches of {settings['batch']}, no CV)",
        "",
        "| strategy | seeds | AULC micro-F1 | labels to 95 % micro-F1 | AULC macro-F1 | labels to 95 % macro-F1 | micro-F1 at budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in sorted(doc["summary"].items(), key=lambda item: -item[1]["aulc_micro_f1"]):
        def labels(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}"

        lines.append(
            f"| {name} | {len(entry['seeds'])} | {entry['aulc_micro_f1']:.3f} ± {entry['aulc_micro_f1_std']:.3f} | "
            f"{labels(entry['labels_to_95pct_micro_f1'])} | {entry['aulc_macro_f1']:.3f} | "
            f"{labels(entry['labels_to_95pct'])} | {entry['final_micro_f1']:.3f} |"
        )
    return lines + [""]


def write_results_md(section: str, name: str) -> None:
    """Replace our section ``name`` of RESULTS.md (re-read just before writing: others append too)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else "# Benchmark results\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS_MD.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated; multi-label (phase 7 only): {', '.join(MULTI_DATASETS)}")
    parser.add_argument("--models", default="tfidf-logreg,embed-logreg", help="the first one gets the ablations")
    parser.add_argument("--phases", default="1,2,3,4,5", help="which phases to run (see above; 6 on its own)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--initial", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--cv-every", type=int, default=5)
    parser.add_argument("--processes", type=int, default=min(2, available_cores()))
    parser.add_argument("--plot", action="store_true")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--section", default="al_quality", help="name of the RESULTS.md section to write")
    parser.add_argument("--adopt", metavar="FINGERPRINT",
                        help="reuse that fingerprint's cache if a few re-runs under the current code are identical")
    args = parser.parse_args()
    if args.adopt:
        adopt(args.adopt, args)
        return
    names = [n for n in args.datasets.split(",") if n]
    models = [m for m in args.models.split(",") if m]
    wanted = {int(p) for p in args.phases.split(",") if p}
    groups: dict[str, Group] = {}

    def group(name: str, model: str, budget: int | None = None) -> Group:
        key = f"{name}/{model}" if budget is None else extended_key(name, model, budget)
        if key not in groups:
            groups[key] = Group(name, model, args, budget)
        return groups[key]

    started = time.perf_counter()
    log(f"code fingerprint {CODE}; cache {CACHE / CODE}")
    if not args.report_only:
        for number, model, strategies in phases(models):
            if number in wanted:
                for name in names:
                    if name not in MULTI_DATASETS:
                        group(name, model).run(strategies)
        if 7 in wanted:
            for name in names:
                if name in MULTI_DATASETS:
                    group(name, models[0]).run(SET_STRATEGIES)
        if 5 in wanted:
            for name in names:
                if name in EXTENDED_BUDGETS:
                    group(name, models[0], EXTENDED_BUDGETS[name]).run(EXTENDED_STRATEGIES.get(name, CORE))
    documents = {}
    for name in names:
        for model in models:
            doc = group(name, model).results()
            if doc is not None and doc["runs"]:
                documents[f"{name}/{model}"] = doc
        if name in EXTENDED_BUDGETS:
            doc = group(name, models[0], EXTENDED_BUDGETS[name]).results()
            if doc is not None and doc["runs"]:
                documents[extended_key(name, models[0], EXTENDED_BUDGETS[name])] = doc
    goals = {model: goal_check(documents, model) for model in models}
    if any(doc["settings"].get("multi_label") for doc in documents.values()):
        goals["multi_label"] = set_goal_check(documents, models[0])
    if args.plot:
        from labelloop.simulate.plot import plot_results

        for key, doc in documents.items():
            name, model, *extended = key.split("/")
            suffix = f"_budget{doc['settings']['budget']}" if extended else ""
            title = f"{name}, {model}, budget {doc['settings']['budget']}"
            plot_results(doc, PLOTS / f"al_{name}_{model}{suffix}.png", title=title,
                         strategies=SET_STRATEGIES if doc["settings"].get("multi_label") else CORE + OTHERS)
            if any(a in doc["summary"] for a in ABLATIONS):
                plot_results(doc, PLOTS / f"al_{name}_{model}{suffix}_ablations.png", title=f"{title}: ablations",
                             strategies=["default", "random", *ABLATIONS])
    if args.write_results:
        write_results_md(markdown(documents, goals, args), args.section)
    print(json.dumps({
        "benchmark": "al_quality",
        "seconds": round(time.perf_counter() - started, 1),
        "code": CODE,
        "results": {key: {"full_pool": doc["full_pool"], "summary": doc["summary"]} for key, doc in documents.items()},
        "goals": goals,
    }, indent=1))


if __name__ == "__main__":
    main()
