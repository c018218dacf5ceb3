"""Tag sets of multi-label projects as bit masks.

Each tag of a multi-label project has a bit (``tags.bit``, 0..62, given in order at creation,
never reused: a renamed tag keeps it, a retired one keeps it too). A set of tags is the sum of
their bits' values, a signed 64-bit integer that is never negative; 0 is the empty set ("labelled:
none of these applies"). Retired tags' bits may remain in stored masks (history) and are ignored
(masked out with :func:`active_mask`).
"""

from __future__ import annotations

from collections.abc import Iterable

from labelloop.errors import InvalidInputError
from labelloop.store.projects import Project


def require_multi_label(project: Project) -> None:
    if not project.multi_label:
        raise InvalidInputError(f"project {project.name!r} is single-label: tag sets apply to multi-label projects")


def mask_of(project: Project, names: Iterable[str]) -> int:
    """The mask of these active tag names (repeats are harmless; no names: 0, "none applies").
    InvalidInputError names every unknown or retired tag."""
    require_multi_label(project)
    bits = project.tag_bits
    names = list(names)
    unknown = [n for n in dict.fromkeys(names) if n not in bits]
    if unknown:
        retired = {t.name for t in project.tags if t.retired}
        words = [f"{n!r} (retired)" if n in retired else repr(n) for n in unknown]
        raise InvalidInputError(
            f"unknown tag{'s' if len(unknown) > 1 else ''} {', '.join(words)}; project {project.name!r} has: "
            f"{', '.join(project.tag_names)}"
        )
    mask = 0
    for n in names:
        mask |= 1 << bits[n]
    return mask


def names_of(project: Project, mask: int) -> list[str]:
    """The active tags of ``mask`` in the project's display order (retired bits dropped)."""
    return [t.name for t in project.tags if not t.retired and t.bit is not None and mask >> t.bit & 1]


def active_mask(project: Project) -> int:
    """The mask of every active tag (``mask & active_mask(project)`` drops retired bits)."""
    mask = 0
    for bit in project.tag_bits.values():
        mask |= 1 << bit
    return mask


def bit_tags(project: Project) -> list[tuple[int, str]]:
    """(bit, name) of the active tags in display order."""
    return [(bit, name) for name, bit in project.tag_bits.items()]
