"""What the review page shows of a multi-label item: per tag, how many of its labellers chose
it, whether they tie on it, and which tags start checked in the decision form.

A tag starts checked when it is in the item's current final set or, for an item with a tie (no
final set), when more than half of its labellers chose it; tied tags start unchecked and are
marked, so the admin decides them. Submitting the form sets the whole set
(:func:`labelloop.store.review.adjudicate` with ``tags``); nothing checked is "none applies".
"""

from __future__ import annotations

from typing import Any

from labelloop.store.projects import Project
from labelloop.store.review import ReviewItem


def set_view(project: Project, item: ReviewItem) -> dict[str, Any]:
    """``tags``: one entry per active tag (``name``, ``votes``, ``tie``, ``checked``), in the
    project's order; ``labellers``: the number of sets on the item; ``chosen``: the tags someone
    chose or that tie (the ones worth a look)."""
    n = len(item.sets)
    votes = {name: 0 for name in project.tag_names}
    for _who, names in item.sets:
        for name in names:
            if name in votes:
                votes[name] += 1
    ties = set(item.conflict_tags)
    final = set(item.label_set) if item.label_set is not None else None
    tags = [
        {
            "name": name,
            "votes": v,
            "tie": name in ties,
            "checked": name in final if final is not None else (name not in ties and 2 * v > n),
        }
        for name, v in votes.items()
    ]
    return {"tags": tags, "labellers": n, "chosen": [t["name"] for t in tags if t["votes"] or t["tie"]]}
