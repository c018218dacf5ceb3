"""Security headers on every answer, /docs served offline, the favicon; on SQLite and PostgreSQL,
through the real app (the browser side, CSP violations and Swagger UI rendering, is in
tests/browser/test_pages_csp.py)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

API = "/api/projects/news"
PASSWORD = "correct horse"  # as in conftest
TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "labelloop" / "server" / "templates"
EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def csrf_in(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login(client, name: str) -> str:
    csrf = csrf_in(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf},
                           follow_redirects=False)
    assert response.status_code == 303
    return csrf_in(client.get("/projects").text)


def policy(response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: sources}."""
    out = {}
    for part in response.headers["content-security-policy"].split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def assert_secured(response, what: str) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (what, name, response.headers.get(name))
    csp = policy(response)
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"], what
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"], what
    assert csp["object-src"] == ["'none'"] and csp["form-action"] == ["'self'"], what
    assert csp["style-src"] == ["'self'"] and csp["img-src"] == ["'self'", "data:"], what
    # no third-party origin and no inline or evaluated script anywhere in the policy
    sources = [s for values in csp.values() for s in values]
    assert not [s for s in sources if "://" in s or s in ("*", "http:", "https:")], what
    assert not {"'unsafe-eval'", "'unsafe-hashes'"} & set(sources), what
    assert "'unsafe-inline'" not in csp["script-src"] + csp["default-src"] + csp["style-src"], what


def test_every_page_and_answer_carries_the_security_headers(client, world):
    anonymous = {
        "/login": 200, "/projects": 303, "/docs": 303, "/healthz": 200, "/static/app.css": 200,
        "/static/nope.css": 404, "/favicon.ico": 200, "/api/me": 401, "/projects/x%00/label": 400,
    }
    for path, status in anonymous.items():
        response = client.get(path, follow_redirects=False)
        assert response.status_code == status, path
        assert_secured(response, path)
    ann = world.auth("ann")
    for response, what in (
        (client.post(f"{API}/next", headers=ann), "bearer fast path: next"),
        (client.post(f"{API}/items/99/labels", json={"label": "Tech"}, headers=ann), "fast path: a refusal"),
        (client.get(f"{API}/stats", headers=ann), "API route"),
        (client.post(f"{API}/next", content=b"x" * 70_000, headers=ann), "413"),
    ):
        assert response.status_code < 500
        assert_secured(response, what)
    login(client, "boss")
    for path in ("/projects", "/projects/news/label", "/admin", "/admin/users", "/admin/projects/news/browse",
                 "/admin/projects/news/tags", "/admin/projects/news/models", "/admin/projects/news/review",
                 "/admin/projects/news/dashboard", "/docs", "/admin/projects/nope/browse",
                 "/admin/projects/news/browse?after=zz"):
        response = client.get(path)
        assert response.headers["content-type"].startswith("text/html"), path
        assert_secured(response, path)


def test_templates_have_no_inline_script():
    """No <script> block that runs, no on*= handler, no javascript: URL in any template (the
    policy would block them; the browser test checks the rendered pages)."""
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE), template.name
        assert "javascript:" not in text.lower(), template.name


def test_docs_need_a_login_and_load_nothing_from_elsewhere(client, world):
    assert client.get("/docs", follow_redirects=False).headers["location"] == "/login?next=/docs"
    login(client, "ann")
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/static/swagger-ui/swagger-ui-bundle.js" in refs and "/static/docs.js" in refs
    assert "/static/swagger-ui/swagger-ui.css" in refs
    for ref in refs:
        assert not urlsplit(ref).netloc and not ref.startswith("//"), ref  # this server only
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert asset.content, ref
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
    assert 'data-openapi-url="/openapi.json"' in page.text and client.get("/openapi.json").status_code == 200
    assert client.get("/static/swagger-ui/swagger-ui-bundle.js").headers["content-type"].startswith(
        ("application/javascript", "text/javascript"))
    # only the files the page uses
    for name in ("redoc.standalone.js", "favicon.png", "../__init__.py", "../core.py", "nope.js"):
        assert client.get(f"/static/swagger-ui/{name}").status_code == 404, name
    assert client.get("/static/app.css").status_code == 200  # the app's own files still answer


def test_favicon(client, world):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    page = client.get("/login").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    assert '<link rel="icon" href="/favicon.ico" sizes="32x32">' in page
