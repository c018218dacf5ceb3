"""Named query configurations a simulation compares (``--strategy default,random,margin,...``).

A configuration is a query strategy of :mod:`labelloop.learn.strategies` plus the two
selection knobs of :func:`labelloop.learn.selection.queue_order`: ``exploration`` (share of
uniformly random positions in the queue) and ``diversity`` (spread the head of the queue over
clusters). Names:

``default``
    exactly what a new project uses: strategy and exploration from
    :data:`labelloop.store.projects.PROJECT_SETTINGS_DEFAULTS`, diversity on (or that
    mapping's ``"diversity"`` if it has one).
``superintendent``
    the baseline of the *superintendent* package's defaults: entropy, 10 % of the queue
    shuffled at random, no diversity (run it with ``--model tfidf-logreg``, its model).
``random``, ``entropy``, ``margin``, ``least-confidence`` (or ``least_confidence``)
    the bare strategy: no exploration, no diversity. ``random`` is passive learning.

``likely:TAG``, ``unsure:TAG``
    the steered queues of issue 13 (:mod:`labelloop.orchestrator.steering`): each round trains
    the default configuration's model and serves the pool by descending probability of TAG
    (``likely``) or nearest TAG's decision boundary first (``unsure``), as the per-tag lists
    of a live project do. TAG is case-sensitive.

Any name may be followed by ``+explore=F`` (0 <= F <= 1), ``+diverse`` or ``+no-diverse`` to
change a knob, e.g. ``margin+diverse`` or ``entropy+explore=0.05+diverse``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from labelloop.errors import InvalidInputError
from labelloop.learn import STRATEGY_NAMES
from labelloop.orchestrator.compute_sets import DEFAULT_SET_STRATEGY, SET_STRATEGY_NAMES
from labelloop.store.projects import PROJECT_SETTINGS_DEFAULTS

__all__ = ["QuerySettings", "default_model", "parse_strategies", "resolve"]

PRESETS = ("default", "superintendent")
STEERED = ("likely", "unsure")


@dataclass(frozen=True)
class QuerySettings:
    """One configuration to simulate; ``name`` is what the user wrote (normalised)."""

    name: str
    strategy: str
    exploration: float
    diversity: bool
    steer: str | None = None  # "likely" or "unsure": serve that list of ``tag`` instead
    tag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The configuration for results.json (``steer`` and ``tag`` only for a steered queue)."""
        values = asdict(self)
        if self.steer is None:
            del values["steer"], values["tag"]
        return values


def default_model() -> str:
    """The model a new project uses."""
    return str(PROJECT_SETTINGS_DEFAULTS["model"])


def _base(name: str, multi_label: bool) -> tuple[str, float, bool]:
    if multi_label:
        return _base_sets(name)
    if name == "default":
        return (
            str(PROJECT_SETTINGS_DEFAULTS["strategy"]),
            float(PROJECT_SETTINGS_DEFAULTS["exploration"]),
            bool(PROJECT_SETTINGS_DEFAULTS.get("diversity", True)),
        )
    if name == "superintendent":
        return "entropy", 0.1, False
    strategy = name.replace("-", "_")
    if strategy not in STRATEGY_NAMES:
        known = ", ".join([*PRESETS, *(s.replace("_", "-") for s in STRATEGY_NAMES)])
        raise InvalidInputError(f"unknown strategy {name!r}; known: {known} (optionally +explore=F, +diverse)")
    return strategy, 0.0, False


def _base_sets(name: str) -> tuple[str, float, bool]:
    """Multi-label configurations: ``default`` (a new multi-label project's strategy, with its
    exploration and diversity) and the bare set strategies."""
    if name == "default":
        return DEFAULT_SET_STRATEGY, float(PROJECT_SETTINGS_DEFAULTS["exploration"]), True
    strategy = name.replace("-", "_")
    if strategy not in SET_STRATEGY_NAMES:
        known = ", ".join(["default", *(s.replace("_", "-") for s in SET_STRATEGY_NAMES)])
        raise InvalidInputError(f"unknown multi-label strategy {name!r}; known: {known} (optionally +explore=F, +diverse)")
    return strategy, 0.0, False


def resolve(spec: str, *, multi_label: bool = False) -> QuerySettings:
    """The configuration called ``spec`` (see the module documentation)."""
    parts = [p.strip() for p in spec.strip().split("+")]
    if not parts[0]:
        raise InvalidInputError(f"empty strategy name in {spec!r}")
    steer, tag = None, None
    if ":" in parts[0]:
        steer, _, tag = (x.strip() for x in parts[0].partition(":"))
        steer = steer.lower()
        if steer not in STEERED or not tag:
            raise InvalidInputError(f"strategy {spec!r}: a steered queue is likely:TAG or unsure:TAG")
        parts[0] = f"{steer}:{tag}"
        strategy, exploration, diversity = _base("default", multi_label)
    else:
        strategy, exploration, diversity = _base(parts[0].lower(), multi_label)
    for part in parts[1:]:
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if key == "explore" and value:
            try:
                exploration = float(value)
            except ValueError:
                raise InvalidInputError(f"strategy {spec!r}: explore={value!r} is not a number") from None
            if not 0.0 <= exploration <= 1.0:
                raise InvalidInputError(f"strategy {spec!r}: explore must be between 0 and 1, not {value}")
        elif key == "diverse" and not value:
            diversity = True
        elif key == "no-diverse" and not value:
            diversity = False
        else:
            raise InvalidInputError(f"strategy {spec!r}: unknown modifier {part!r}; use +explore=F, +diverse or +no-diverse")
    name = "+".join([parts[0] if steer else parts[0].lower(), *parts[1:]])
    return QuerySettings(name=name, strategy=strategy, exploration=exploration, diversity=diversity, steer=steer,
                         tag=tag)


def parse_strategies(text: str | list[str], *, multi_label: bool = False) -> list[QuerySettings]:
    """Comma-separated configuration names (or a list of them), without repeats; with
    ``multi_label``, the names of set strategies (``default``, ``max-uncertainty``,
    ``mean-uncertainty``, ``random``)."""
    specs = text.split(",") if isinstance(text, str) else list(text)
    specs = [s.strip() for s in specs if s.strip()]
    if not specs:
        raise InvalidInputError("give at least one strategy, e.g. --strategy default,random")
    resolved = [resolve(s, multi_label=multi_label) for s in specs]
    names = [r.name for r in resolved]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInputError(f"strategy {repeated[0]!r} is given twice")
    return resolved
