"""SQL statements per plain label, plain skip and next (bearer token), on SQLite, for the tree on
PYTHONPATH: the check that comments, flags and skip reasons (issue 14) add no query to the hot
path. Counts every statement the sqlite3 driver runs (its trace callback; BEGIN, COMMIT,
SAVEPOINT and PRAGMA left out), per request, after 20 warm-up labels.

    PYTHONPATH=src .venv/bin/python benchmarks/hot_path_statements.py [SQLITE_URL]

Prints JSON: min and median statements per request (compare two trees with PYTHONPATH).
"""
import json, re, sys, tempfile
from datetime import UTC, datetime
from fastapi.testclient import TestClient
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from labelloop.config import Settings
from labelloop.server import create_app
from labelloop.store import open_engine, writing
from labelloop.store import projects as sp, users as su, members as sm
from labelloop.store.items import rand_key
from labelloop.store.schema import items

counts = {"n": 0}
def _traced(sql):
    if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK", "PRAGMA")):
        counts["n"] += 1
@event.listens_for(Engine, "connect")
def _trace(dbapi_conn, record):
    if hasattr(dbapi_conn, "set_trace_callback"):  # sqlite3: every statement the driver runs
        dbapi_conn.set_trace_callback(_traced)

url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/x.db"
eng = open_engine(url)
now = datetime.now(UTC)
with writing(eng) as conn:
    p = sp.create_project(conn, name="p", labels=["A", "B"], seed=1, settings={"audit_fraction": 0.0})
    conn.execute(insert(items), [{"project_id": p.id, "external_id": f"e{i}", "display": {"t": str(i)}, "text": str(i),
                                  "rand": rand_key(1, f"e{i}"), "created_at": now, "updated_at": now} for i in range(400)])
    u = su.create_user(conn, name="ann", role="labeller", password="correct horse")
    tok = su.create_token(conn, user_id=u.id)
    sm.add_member(conn, project="p", user="ann", actor_id=None)
H = {"Authorization": f"Bearer {tok}"}
out = {}
with TestClient(create_app(Settings(database_url=url)), base_url="http://127.0.0.1") as c:
    for _ in range(20):  # warm the caches
        i = c.post("/api/projects/p/next", headers=H).json()["item"]["id"]
        c.post(f"/api/projects/p/items/{i}/labels", headers=H, json={"label": "A"})
    for name, body in (("label", {"label": "A"}), ("skip", None)):
        per = []
        for _ in range(50):
            i = c.post("/api/projects/p/next", headers=H).json()["item"]["id"]
            counts["n"] = 0
            if name == "label":
                r = c.post(f"/api/projects/p/items/{i}/labels", headers=H, json=body)
            else:
                r = c.post(f"/api/projects/p/items/{i}/skip", headers=H)
            assert r.status_code in (201, 204), r.text
            per.append(counts["n"])
        out[name] = {"min": min(per), "median": sorted(per)[len(per) // 2]}
    per = []
    for _ in range(30):
        counts["n"] = 0
        r = c.post("/api/projects/p/next", headers=H)
        per.append(counts["n"])
        i = r.json()["item"]["id"]
        c.post(f"/api/projects/p/items/{i}/labels", headers=H, json={"label": "B"})
    out["next"] = {"min": min(per), "median": sorted(per)[len(per) // 2]}
print(json.dumps({"benchmark": "hot_path_statements", "db": url.split(":")[0], "statements per request": out}))
