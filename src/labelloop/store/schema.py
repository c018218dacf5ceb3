"""The database schema (SQLAlchemy Core), the single source of truth of labelloop.

Alembic migrations under ``store/migrations`` must produce exactly this schema
(``tests/store/test_migrations.py`` compares them).

Design notes for 1M items per project:
- ``items`` carries the item's label state (``n_labels``, ``label_tag_id``, ``label_source``)
  so that progress, export and the queue never aggregate annotations on the hot path.
- ``ix_items_open`` is a partial index over the items that still need a label, in their
  seeded random order: the queue before any model and the audit draw read it directly, and it
  shrinks as labelling progresses.
- ``item_scores`` holds one row per unlabelled item and model run (keyed by run and item);
  ``score_ranks`` holds the same items in serving order (keyed by run and rank). The queue reads
  the current run (``projects.current_run_id``) through ``score_ranks``' key. A round appends a
  new run's rows to both in bulk, each in its own key order, and then switches the pointer in one
  short transaction; an old run is a contiguous key range of each, deleted in order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if getattr(dialect, "name", "") == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigID = BigInteger().with_variant(Integer(), "sqlite")

ROLES = ("admin", "labeller")
ANNOTATION_SOURCES = ("human", "import", "review")
ASSIGNMENT_STATES = ("leased", "labelled", "skipped")
RUN_STATES = ("running", "complete", "failed")
BULK_ACTIONS = ("add", "remove")

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("role IN ('admin', 'labeller')", name="role"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    # SHA-256 of a 256-bit random token: tokens carry full entropy, so a fast hash is safe and
    # keeps bearer authentication cheap on every request.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("name", String(100), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False),
    Column("client", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_login_failures_lookup", "username", "client", "created_at"),
)

sessions = Table(
    "sessions",
    metadata,
    # A login: the cookie carries a random 256-bit session key, the database its SHA-256 (as for
    # API tokens). Logout, a password reset and disabling the account delete the rows, which ends
    # those sessions on every worker (each re-checks its cached sessions about every second).
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    # Name of the id column in the imported files; export writes the external id under it.
    Column("id_column", String(200), nullable=False, server_default="id"),
    # Ordered display field names, as imported; export writes them in this order.
    Column("display_columns", JSONType, nullable=False),
    Column("settings", JSONType, nullable=False),
    Column("seed", Integer, nullable=False),
    # The model run whose scores the queue serves; not a foreign key, to keep the two tables
    # free of a cycle. Switched in one short transaction at the end of a round.
    Column("current_run_id", Integer, nullable=True),
    Column("retrain_requested_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # A multi-label project gives each item a *set* of tags (bit masks, see ``tags.bit``); fixed
    # for the project's life.
    Column("multi_label", Boolean, nullable=False, server_default=text("false")),
)

tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("retired", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    # Multi-label projects: the tag's bit (0..62) in the masks of annotations and items, given
    # in order at creation and never reused (a renamed or retired tag keeps it). Null otherwise.
    Column("bit", SmallInteger, nullable=True),
    UniqueConstraint("project_id", "name"),
    # A unique index rather than a constraint: SQLite adds it without rebuilding the table.
    Index("ix_tags_project_bit", "project_id", "bit", unique=True),
)

project_members = Table(
    "project_members",
    metadata,
    # Labellers see, label and read the stats of only the projects they are members of; admins
    # see every project without a row here.
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(512), nullable=False),
    Column("display", JSONType, nullable=False),
    Column("text", Text, nullable=False),
    # Seeded pseudo-random key: the serving order before any model, and the audit draw.
    Column("rand", BigInteger, nullable=False),
    # Human (or imported) labels so far, and how many distinct labellers the item needs.
    Column("n_labels", Integer, nullable=False, server_default=text("0")),
    Column("target_labels", Integer, nullable=False, server_default=text("1")),
    # The item's final label by the project's rule (adjudicated > majority > single), kept
    # up to date by every write to annotations; label_source is 'human', 'conflict' or null.
    Column("label_tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("label_source", String(20), nullable=True),
    Column("adjudicated_tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Multi-label projects: the final set (a bit mask of tags.bit; 0 = labelled, no tag applies)
    # and an admin's adjudicated set. label_tag_id stays null; "labelled" is label_mask not null.
    Column("label_mask", BigInteger, nullable=True),
    Column("adjudicated_mask", BigInteger, nullable=True),
    UniqueConstraint("project_id", "external_id"),
    Index(
        "ix_items_open",
        "project_id",
        "rand",
        sqlite_where=text("n_labels < target_labels"),
        postgresql_where=text("n_labels < target_labels"),
    ),
    Index("ix_items_label", "project_id", "label_tag_id"),
)

annotations = Table(
    "annotations",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    # Null for labels brought in by `import --label-column`.
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    # A single-label annotation has tag_id; a multi-label one has tag_mask (a bit mask of
    # tags.bit, 0 = "none of these applies"). Exactly one of the two is set.
    Column("tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("tag_mask", BigInteger, nullable=True),
    Column("source", String(20), nullable=False),
    # Served as an audit item (drawn uniformly at random, not by priority).
    Column("is_audit", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("item_id", "user_id"),
    CheckConstraint("source IN ('human', 'import', 'review')", name="source"),
    CheckConstraint("(tag_id IS NULL) <> (tag_mask IS NULL)", name="tag_or_mask"),
    Index("ix_annotations_project_user", "project_id", "user_id", "created_at"),
    Index("ix_annotations_project_created", "project_id", "created_at"),
)

assignments = Table(
    "assignments",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("is_audit", Boolean, nullable=False, server_default=text("false")),
    Column("leased_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    # Served from a steered queue (search, similar, likely, unsure, random; issue 13): never an
    # audit draw, and not counted as served by the model's order (store.runs.audit_items_reached).
    Column("steered", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("item_id", "user_id"),
    CheckConstraint("state IN ('leased', 'labelled', 'skipped')", name="state"),
    Index("ix_assignments_user_state", "project_id", "user_id", "state"),
    Index("ix_assignments_item_state", "item_id", "state", "expires_at"),
)

# Held-out audit items a steered queue walked past (ranked before the item it served): they count
# as reached, as if that queue had picked them (orchestrator/heldout.py; server/steering.py).
steer_reached = Table(
    "steer_reached",
    metadata,
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("reached_at", UTCDateTime, nullable=False),
    Index("ix_steer_reached_project", "project_id"),
)

model_runs = Table(
    "model_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("strategy", String(100), nullable=False),
    Column("labels_used", Integer, nullable=False, server_default=text("0")),
    Column("metrics", JSONType, nullable=True),
    Column("path", String(1000), nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    UniqueConstraint("project_id", "version"),
    CheckConstraint("status IN ('running', 'complete', 'failed')", name="status"),
)

item_scores = Table(
    "item_scores",
    metadata,
    # No foreign keys: a round bulk-writes up to a million rows, and rows of old runs are
    # deleted with their run by the orchestrator. Keyed by (run, item) for look-ups; the serving
    # order is ``score_ranks``. WITHOUT ROWID on SQLite: the key *is* the table (one b-tree).
    Column("run_id", Integer, primary_key=True),
    Column("item_id", BigID, primary_key=True),
    Column("priority", Float, nullable=False),
    Column("predicted_tag_id", Integer, nullable=True),
    Column("confidence", Float, nullable=True),
    # Multi-label runs: the predicted set (bit mask) and the probabilities, float32 little-endian,
    # one per tag in the order of the run's metrics["tags"].
    Column("predicted_mask", BigInteger, nullable=True),
    Column("proba", LargeBinary, nullable=True),
    sqlite_with_rowid=False,
)

score_ranks = Table(
    "score_ranks",
    metadata,
    # A run's items in serving order: rank 0 is the highest priority (ties by item id). Kept apart
    # from item_scores so that a round appends to both in their own key order (no random index
    # inserts), and deleting an old run removes a contiguous key range from each.
    Column("run_id", Integer, primary_key=True),
    Column("rank", Integer, primary_key=True, autoincrement=False),
    Column("item_id", BigID, nullable=False),
    Column("priority", Float, nullable=False),
    sqlite_with_rowid=False,
)

steer_lists = Table(
    "steer_lists",
    metadata,
    # A run's steering lists per tag (issue 13): kind 'likely' (items by descending probability
    # of the tag) or 'unsure' (items nearest the tag's decision boundary), rank 0 first, at most
    # labelloop.store.steerlists.LIST_SIZE per tag and kind. Written by the round before its
    # switch, deleted with the run's scores. No foreign keys, as item_scores.
    Column("run_id", Integer, primary_key=True),
    Column("tag_id", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(10), primary_key=True),
    Column("rank", Integer, primary_key=True, autoincrement=False),
    Column("item_id", BigID, nullable=False),
    sqlite_with_rowid=False,
)

vector_sets = Table(
    "vector_sets",
    metadata,
    # The reduced feature vectors of a project's items (the ``similar`` queue): one set per
    # feature build, written by a round; ``complete`` once every chunk is in.
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("featurizer", String(200), nullable=False),
    Column("fingerprint", String(200), nullable=False),
    Column("dims", Integer, nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("complete", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_vector_sets_project", "project_id", "id"),
)

item_vectors = Table(
    "item_vectors",
    metadata,
    # A vector set in chunks of consecutive items: ``item_ids`` int64 and ``vectors`` float16
    # (unit length, ``dims`` per item), both little-endian, so a million items load in ~100 rows.
    Column("set_id", Integer, primary_key=True),
    Column("chunk", Integer, primary_key=True, autoincrement=False),
    Column("item_ids", LargeBinary, nullable=False),
    Column("vectors", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

orchestrator_locks = Table(
    "orchestrator_locks",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

orchestrator_heartbeats = Table(
    "orchestrator_heartbeats",
    metadata,
    # The last time an orchestrator checked this project for work, whether or not it held the lock
    # (a round), and how it runs: 'server' (serve --orchestrate), 'all' (orchestrate --all) or
    # 'project' (orchestrate PROJECT). The model page says how long ago that was.
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("action", String(100), nullable=False),
    Column("details", JSONType, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_audit_log_project_created", "project_id", "created_at"),
)

# ---- Full-text search over items.text: store/search_schema.py (objects SQLAlchemy cannot
# describe: PostgreSQL's stored tsvector column and its GIN index, SQLite's FTS5 table).


bulk_ops = Table(
    "bulk_ops",
    metadata,
    # An admin's bulk labelling: one tag applied to (``add``) or, in a multi-label project, taken
    # out of (``remove``) the chosen items' sets. Its items are ``bulk_labels``. Kept apart from
    # ``annotations``: bulk labels never count in ``n_labels``, overlap, agreement or the audit;
    # an item's final label comes from them only when it has no human label
    # (``store/labels.py``). Undone as a whole (``undone_at``); rows are kept for history.
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("tag_id", Integer, ForeignKey("tags.id"), nullable=False),
    Column("action", String(10), nullable=False),
    Column("n_items", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("undone_at", UTCDateTime, nullable=True),
    Column("undone_by", Integer, ForeignKey("users.id"), nullable=True),
    CheckConstraint("action IN ('add', 'remove')", name="action"),
    Index("ix_bulk_ops_project_id", "project_id", "id"),
)

bulk_labels = Table(
    "bulk_labels",
    metadata,
    Column("bulk_id", Integer, ForeignKey("bulk_ops.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_bulk_labels_item", "item_id", "bulk_id"),
)

# ---- Issue 14's tables (codebook, gold items, label history, ...): store/schema_guidance.py, imported here
# so that ``metadata`` holds every table (the module imports this one's names; kept last).
from labelloop.store.schema_guidance import (  # noqa: E402,F401
    CODEBOOK_TRIGGER_DDL, codebook_entries, codebook_examples, gold_answers, gold_items, label_history,
    NOTE_KINDS, SKIP_REASONS, item_notes,
)
