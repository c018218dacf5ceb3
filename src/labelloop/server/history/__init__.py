"""My history (issue 14): a labeller's last labels and changing one while it is theirs
(:mod:`labelloop.store.history`): the JSON API (:mod:`.api`) and the page (:mod:`.pages`)."""
