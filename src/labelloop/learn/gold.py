"""Labellers' accuracy on gold items (items with a known answer): a 95 % interval and the flag.

Pure functions (counts in, numbers out). The interval is Wilson's score interval: unlike the
normal approximation it stays inside [0, 1] and keeps close to its nominal coverage with few
answers and accuracies near 1 (a labeller at 95 % on 20 gold items), which is exactly where
labelling teams are. ``benchmarks/gold_sim.py`` measures its coverage on simulated labellers.

The flag: a labeller is flagged when the *upper* bound of their interval is below the project's
``gold_min_accuracy``, i.e. when the data make it unlikely (about 2.5 %) that their true
accuracy reaches it. A point estimate below the bar would flag good labellers after a few
unlucky answers (an 85 % labeller is below 80 % on 20 items one time in six); the upper bound
waits for evidence, at the price of needing more answers for a labeller just below the bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def wilson_interval(correct: int, answered: int, *, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``correct / answered`` (95 % by default).

    ``answered`` 0 gives (0.0, 1.0): no evidence either way. ValueError for counts that make
    no sense (negative, or more correct than answered)."""
    if answered < 0 or correct < 0 or correct > answered:
        raise ValueError(f"need 0 <= correct <= answered, got {correct} of {answered}")
    if answered == 0:
        return 0.0, 1.0
    n = float(answered)
    p = correct / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # Exact at the ends (rounding would leave 0.9999999 for 20 of 20).
    if correct == 0:
        lo = 0.0
    if correct == answered:
        hi = 1.0
    return lo, hi


@dataclass(frozen=True)
class GoldAccuracy:
    """One labeller's gold figures: answers, correct ones, accuracy (None without answers),
    the 95 % interval and whether they are flagged."""

    answered: int
    correct: int
    accuracy: float | None
    ci95: tuple[float, float]
    flagged: bool

    def as_dict(self) -> dict[str, object]:
        return {"answered": self.answered, "correct": self.correct, "accuracy": self.accuracy,
                "ci95": [self.ci95[0], self.ci95[1]], "flagged": self.flagged}


def gold_accuracy(correct: int, answered: int, *, min_accuracy: float) -> GoldAccuracy:
    """A labeller's accuracy on gold with its Wilson interval, flagged when the interval's upper
    bound is below ``min_accuracy`` (see the module's notes)."""
    lo, hi = wilson_interval(correct, answered)
    accuracy = correct / answered if answered else None
    return GoldAccuracy(answered, correct, accuracy, (lo, hi), answered > 0 and hi < min_accuracy)
