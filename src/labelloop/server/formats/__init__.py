"""How the pages write values for people: :mod:`.numbers` (Jinja2 filters)."""

from labelloop.server.formats.numbers import FILTERS, ago, count, install, percent, rank, score

__all__ = ["FILTERS", "ago", "count", "install", "percent", "rank", "score"]
