"""The server's side of multi-label projects (tag sets): the label body's two shapes
(:mod:`.bodies`, shared by the JSON routes and the bearer fast path), the review of per-tag
conflicts (:mod:`.review`) and the per-tag figures of the stats and dashboard (:mod:`.figures`).

Single-label requests meet only :func:`.bodies.label_request`'s first test; everything else
here runs for multi-label projects alone."""
