"""A login flood: N keep-alive connections posting random user names and passwords to /login
in a loop, as fast as the server answers (a guesser does not wait for ``Retry-After``).

    .venv/bin/python benchmarks/login_flood.py --port 8000 [--connections 40] [--seconds 20]

Each connection first GETs /login for a session cookie and its CSRF token, so its posts reach
the password check (without them they would stop at the CSRF check). Prints JSON: logins per
second, the answers by status (401 checked and wrong, 429 limited, 503 the password pool full)
and the answer times. ``serve_latency.py --login-flood N`` runs it in a process of its own
beside each labelling phase (:func:`start`, :func:`finish`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import string
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

_CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes):
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status, length, cookie = int(head[9:12]), 0, None
    for line in head.split(b"\r\n"):
        lower = line.lower()
        if lower.startswith(b"content-length:"):
            length = int(line[15:])
        elif lower.startswith(b"set-cookie: labelloop_session="):
            cookie = line[12:].split(b";")[0]
    return status, cookie, (await reader.readexactly(length) if length else b"")


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=n))


async def _flooder(port: int, stop: float, seed: int, answers: dict[int, int], times: list[float]) -> None:
    rng = random.Random(f"{seed} {time.time()}")
    while time.perf_counter() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            _, cookie, body = await _exchange(reader, writer, b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            token = _CSRF.search(body).group(1).decode()
            while time.perf_counter() < stop:
                form = urlencode({"username": _word(rng, 8), "password": _word(rng, 12), "csrf_token": token,
                                  "next": "/"}).encode()
                request = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: " + cookie +
                           b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                           % len(form) + form)
                began = time.perf_counter()
                status, new_cookie, _ = await _exchange(reader, writer, request)
                times.append(time.perf_counter() - began)
                answers[status] = answers.get(status, 0) + 1
                cookie = new_cookie or cookie
            writer.close()
        except (OSError, asyncio.IncompleteReadError, AttributeError):
            answers[0] = answers.get(0, 0) + 1  # a broken connection: count it and reconnect
            await asyncio.sleep(0.05)


async def flood(port: int, connections: int, seconds: float) -> dict:
    answers: dict[int, int] = {}
    times: list[float] = []
    began = time.perf_counter()
    stop = began + seconds
    await asyncio.gather(*(_flooder(port, stop, i, answers, times) for i in range(connections)))
    elapsed = time.perf_counter() - began
    ordered = sorted(times) or [0.0]
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {
        "connections": connections, "seconds": round(elapsed, 1), "logins_per_s": round(len(times) / elapsed, 1),
        "answers": {str(k): v for k, v in sorted(answers.items())},
        "answer_p50_ms": pick(0.5), "answer_p99_ms": pick(0.99),
    }


def start(port: int, connections: int, seconds: float) -> subprocess.Popen[str]:
    """Run a flood in a process of its own (not in the labellers' load generator)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--connections", str(connections),
         "--seconds", str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict:
    out, _ = proc.communicate(timeout=120)
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(flood(args.port, args.connections, args.seconds))))


if __name__ == "__main__":
    main()
