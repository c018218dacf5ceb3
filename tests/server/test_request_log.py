"""Request ids and the per-request log line: in process, and as JSON lines from `labelloop serve`."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from labelloop.errors import ConfigError
from labelloop.logs import JsonFormatter, configure_logging

API = "/api/projects/news"
HEX16 = re.compile(r"[0-9a-f]{16}")
LABELLOOP = str(Path(sys.executable).parent / "labelloop")


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "labelloop.request"]


def test_a_valid_request_id_is_echoed_and_logged(client, world, caplog):
    caplog.set_level(logging.INFO, logger="labelloop.request")
    for rid in ("abc-123", "A.b_C-9", "x" * 64):
        response = client.get("/healthz", headers={"X-Request-ID": rid})
        assert response.headers["x-request-id"] == rid
    fields = [r.fields for r in request_lines(caplog)]
    assert [f["request_id"] for f in fields] == ["abc-123", "A.b_C-9", "x" * 64]
    assert all(f["method"] == "GET" and f["path"] == "/healthz" and f["status"] == 200 for f in fields)
    assert all(f["user"] is None and f["duration_ms"] >= 0 for f in fields)


def test_a_missing_or_invalid_request_id_is_replaced_by_a_new_one(client, world, caplog):
    caplog.set_level(logging.INFO, logger="labelloop.request")
    given = [None, "", "x" * 65, "has space", "semi;colon", "quote\"", "ünïcode", "a/b", "<script>"]
    seen = []
    for rid in given:
        headers = {} if rid is None else {"X-Request-ID": rid.encode("utf-8")}
        response = client.get("/healthz", headers=headers)
        assert HEX16.fullmatch(response.headers["x-request-id"]), rid
        seen.append(response.headers["x-request-id"])
    assert len(set(seen)) == len(given)  # a fresh id every time
    assert [r.fields["request_id"] for r in request_lines(caplog)] == seen


def test_every_kind_of_answer_carries_its_id_and_names_the_user(client, world, caplog):
    caplog.set_level(logging.INFO, logger="labelloop.request")
    ann = {**world.auth("ann"), "X-Request-ID": "fast-next"}
    # the bearer fast path (next, label), a FastAPI route, a refusal and a 413 from the body limit
    item = client.post(f"{API}/next", headers=ann)
    assert item.status_code == 200 and item.headers["x-request-id"] == "fast-next"
    labelled = client.post(f"{API}/items/{item.json()['item']['id']}/labels", json={"label": "Tech"},
                           headers={**world.auth("ann"), "X-Request-ID": "fast-label"})
    assert labelled.status_code == 201 and labelled.headers["x-request-id"] == "fast-label"
    stats = client.get(f"{API}/stats", headers={**world.auth("bob"), "X-Request-ID": "route"})
    assert stats.status_code == 200 and stats.headers["x-request-id"] == "route"
    refused = client.get("/api/me", headers={"X-Request-ID": "anon"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "anon"
    big = client.post(f"{API}/next", content=b"x" * 70_000, headers={**world.auth("ann"), "X-Request-ID": "big"})
    assert big.status_code == 413 and big.headers["x-request-id"] == "big"
    logged = {r.fields["request_id"]: r.fields for r in request_lines(caplog)}
    assert (logged["fast-next"]["user"], logged["fast-next"]["status"], logged["fast-next"]["method"]) == (
        "ann", 200, "POST")
    assert logged["fast-next"]["path"] == f"{API}/next"
    assert (logged["fast-label"]["user"], logged["fast-label"]["status"]) == ("ann", 201)
    assert (logged["route"]["user"], logged["route"]["status"]) == ("bob", 200)
    assert (logged["anon"]["user"], logged["anon"]["status"]) == (None, 401)
    assert logged["big"]["status"] == 413
    text = [r.getMessage() for r in request_lines(caplog) if r.fields["request_id"] == "fast-label"][0]
    assert text.startswith(f"POST {API}/items/") and " 201 " in text and "user=ann" in text


def test_no_request_line_when_info_is_off(client, world, caplog):
    caplog.set_level(logging.WARNING, logger="labelloop.request")
    assert client.get("/healthz").status_code == 200
    assert request_lines(caplog) == []


def test_json_formatter_and_bad_settings():
    record = logging.LogRecord("labelloop.request", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.fields = {"request_id": "r1", "status": 200, "message": "not overwritten"}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x" and line["request_id"] == "r1" and line["status"] == 200
    assert line["level"] == "INFO" and line["logger"] == "labelloop.request" and line["time"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]
    with pytest.raises(ConfigError, match="LABELLOOP_LOG_FORMAT='xml': use one of text, json"):
        configure_logging(fmt="xml")
    with pytest.raises(ConfigError, match="LABELLOOP_LOG_LEVEL='LOUD'"):
        configure_logging(level="LOUD")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_writes_one_json_object_per_line_with_the_request_id(world, db_url):
    port = _free_port()
    proc = subprocess.Popen(
        [LABELLOOP, "serve", "--port", str(port), "--workers", "2", "--db", db_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LABELLOOP_LOG_FORMAT": "json", "LABELLOOP_LOG_LEVEL": "INFO"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
        answer = httpx.post(url + f"{API}/next", headers={**world.auth("bob"), "X-Request-ID": "soak.7-x_Y"})
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "soak.7-x_Y"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if line.startswith("{")]
    objects = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(o) for o in objects)
    mine = [o for o in objects if o.get("request_id") == "soak.7-x_Y"]
    assert len(mine) == 1
    assert mine[0]["logger"] == "labelloop.request" and mine[0]["user"] == "bob"
    assert (mine[0]["method"], mine[0]["path"], mine[0]["status"]) == ("POST", f"{API}/next", 200)
    assert isinstance(mine[0]["duration_ms"], float)
    assert any(o["message"].startswith("Uvicorn running on") for o in objects)  # Uvicorn's lines too
    assert not [line for line in err.splitlines() if line.strip() and not line.startswith("{")
                and not line.startswith("serving on ")]
