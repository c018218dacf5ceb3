"""The codebook's pages and API (issue 14): per tag a definition and pinned examples.

``markdown.py`` renders definitions safely; ``api.py`` is the JSON API; ``pages.py`` the admin
page and the small pin forms of the data browser and the review page. The store side is
:mod:`labelloop.store.codebook`.
"""
