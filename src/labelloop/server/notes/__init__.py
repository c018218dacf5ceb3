"""Comments, flags and skip reasons (issue 14): the labelling writes that carry them
(:mod:`.labels`) and the admins' flags page and API (:mod:`.pages`)."""
