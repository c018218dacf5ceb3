"""The web shell around the pages: security headers on every answer, the API viewer at
``/docs`` with Swagger UI served from the installed ``fastapi-offline`` package (no CDN),
and the favicon."""
