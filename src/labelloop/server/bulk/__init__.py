"""Bulk labelling by admins (:mod:`labelloop.store.bulklabels`): the JSON API (:mod:`.api`),
the admin page (:mod:`.pages`) and where the page's items come from (:mod:`.sources`)."""
