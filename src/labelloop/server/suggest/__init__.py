"""Model suggestions on the labelling routes (issue 14): :mod:`labelloop.server.suggest.serve`.

The rules and the record are :mod:`labelloop.store.suggestions`; the page's side is
``static/suggest.js``; the dashboard's figures come from
:func:`labelloop.store.suggestions.suggestion_figures`.
"""
