"""Characters no name may have: of a project, a tag or a user (each kind's own rules, such as
length or spaces, live with it: ``projects.validate_project_name``,
``projects.validate_tag_names``, ``users.validate_user_name``).

Refused everywhere a name is created or renamed:

- control characters (Unicode category Cc: C0, DEL and C1) and the line and paragraph
  separators U+2028 and U+2029, which break the line a name is shown on;
- bidirectional controls: the embeddings and overrides U+202A-U+202E, the isolates
  U+2066-U+2069 and the marks U+200E, U+200F and U+061C, which make a name read differently
  from what it is ("Trojan Source");
- the names ``.`` and ``..``, which mean folders wherever a name becomes part of a path.
"""

from __future__ import annotations

import unicodedata

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
RESERVED_NAMES = (".", "..")


def name_problem(name: str) -> str | None:
    """What makes ``name`` unusable as a name, in words, or None."""
    if name in RESERVED_NAMES:
        return "'.' and '..' are not allowed as names"
    for char in name:
        if char in BIDI_CONTROLS:
            return (f"bidirectional control characters are not allowed (it has U+{ord(char):04X}, "
                    "which changes how the text around it reads)")
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"control characters are not allowed (it has U+{ord(char):04X})"
    return None
