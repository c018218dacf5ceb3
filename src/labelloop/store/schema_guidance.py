"""Issue 14's tables ("guide and check the labeller"), in ``schema.metadata`` like every other
table (store/schema.py imports this module at its end; migrations produce exactly both)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint,
    text,
)

from labelloop.store.schema import BigID, UTCDateTime, annotations, assignments, items, metadata, projects

# ---- Codebook (issue 14; store/codebook.py, migration 0011) -------------------------------------
# Per tag a Markdown definition, kept in every version, and pinned example items. A project's
# ``codebook_version`` goes up by one on every change of a definition; ``codebook_entries`` keeps
# each version's text (one row per change: the tag and its new definition). Every annotation
# records the version it was made under (null: the project had no codebook yet), written by the
# database itself (CODEBOOK_TRIGGER_DDL), so that no insert path changes and the hot path gains
# no query; a review decision records it in ``items.adjudicated_codebook_version``.
projects.append_column(Column("codebook_version", Integer, nullable=False, server_default=text("0")))
annotations.append_column(Column("codebook_version", Integer, nullable=True))
items.append_column(Column("adjudicated_codebook_version", Integer, nullable=True))

codebook_entries = Table(
    "codebook_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", Text, nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("project_id", "version"),
    Index("ix_codebook_entries_tag", "tag_id", "version"),
)

codebook_examples = Table(
    "codebook_examples",
    metadata,
    Column("tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_codebook_examples_item", "item_id"),
)

# PostgreSQL sets NEW.codebook_version before the row is written (one primary-key look-up inside
# the statement); SQLite cannot change NEW, so it updates the new row after the insert, and only
# when the project has a codebook (the WHEN clause), so projects without one pay nothing.
# Migration 0011 holds its own frozen copy. Triggers are outside SQLAlchemy's metadata (and the
# migration comparison); tests/store/test_codebook.py checks them on both databases.
CODEBOOK_TRIGGER_DDL = {
    "postgresql": (
        "CREATE OR REPLACE FUNCTION labelloop_codebook_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN SELECT NULLIF(p.codebook_version, 0) INTO NEW.codebook_version FROM projects p "
        "WHERE p.id = NEW.project_id; RETURN NEW; END $$",
        "CREATE TRIGGER annotations_codebook_version BEFORE INSERT ON annotations "
        "FOR EACH ROW EXECUTE FUNCTION labelloop_codebook_version()",
    ),
    "sqlite": (
        "CREATE TRIGGER annotations_codebook_version AFTER INSERT ON annotations "
        "WHEN (SELECT codebook_version FROM projects WHERE id = new.project_id) > 0 BEGIN "
        "UPDATE annotations SET codebook_version = "
        "(SELECT codebook_version FROM projects WHERE id = new.project_id) WHERE id = new.id; END",
    ),
}

# ---- Gold items (issue 14; store/gold.py, migration 0013) ---------------------------------------
# An admin's known answer for an item (a tag, or in a multi-label project a set as a bit mask):
# the item's final label (``items.adjudicated_*`` is set to it, so every recompute keeps it) and
# out of the normal queue (``items.target_labels`` 0). A share ``gold_fraction`` of served items
# are gold items the labeller has not seen; their answers go to ``gold_answers``, never to
# ``annotations`` (n_labels, agreement, the audit and training never see them).
gold_items = Table(
    "gold_items",
    metadata,
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("tag_mask", BigInteger, nullable=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("(tag_id IS NULL) <> (tag_mask IS NULL)", name="tag_or_mask"),
    Index("ix_gold_items_project", "project_id", "item_id"),
)

gold_answers = Table(
    "gold_answers",
    metadata,
    # A labeller's answer to a gold item served to them, judged against the gold answer at the
    # time (``correct`` is judged again if an admin changes the gold answer).
    Column("id", BigID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("tag_mask", BigInteger, nullable=True),
    Column("correct", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("item_id", "user_id"),
    CheckConstraint("(tag_id IS NULL) <> (tag_mask IS NULL)", name="tag_or_mask"),
    Index("ix_gold_answers_project_user", "project_id", "user_id", "created_at"),
)

# ---- My history: changes of a labeller's own labels (store/history.py; migration 0015) --------
label_history = Table(
    "label_history",
    metadata,
    # One row per change of a label after it was made (the labeller's "My history" page): the
    # annotation's value before and after (tag_id single-label, tag_mask multi-label), when and
    # by whom. ``annotation_id`` is no foreign key: an undo deletes the annotation, and the
    # history of what it was stays. Written only by store/history.py ``change_label``; the
    # labelling hot path never reads or writes it.
    Column("id", BigID, primary_key=True),
    Column("annotation_id", BigID, nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),  # whose label it is
    Column("old_tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("old_mask", BigInteger, nullable=True),
    Column("new_tag_id", Integer, ForeignKey("tags.id"), nullable=True),
    Column("new_mask", BigInteger, nullable=True),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("changed_by", Integer, ForeignKey("users.id"), nullable=True),
    Index("ix_label_history_item", "item_id", "id"),
    Index("ix_label_history_annotation", "annotation_id"),
)

# ---- Model suggestions (issue 14; store/suggestions.py; migration 0014) ------------------------
# assignments: the serving model's prediction at serve time (written only while the `suggestions`
# setting is on) and how it was shown ('order'/'preselect'; null: not shown: audit, overlap, gold).
for _column in (Column("predicted_tag_id", Integer, nullable=True), Column("predicted_mask", BigInteger, nullable=True),
                Column("suggest_mode", String(10), nullable=True)):
    assignments.append_column(_column)

# ---- Comments, flags and skip reasons (issue 14; store/notes.py; migration 0012) -------------
# One row per label or skip that carried a comment, an "unsure" flag or a skip reason, written
# after it in the same transaction (a plain label or skip never touches this table); admins
# answer them on the flags page and mark them resolved.
NOTE_KINDS = ("comment", "unsure", "skip")
SKIP_REASONS = ("unclear", "off-topic", "needs-context", "other")

item_notes = Table(
    "item_notes",
    metadata,
    Column("id", BigID, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigID, ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("reason", String(20), nullable=True),
    Column("text", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    CheckConstraint("kind IN ('comment', 'unsure', 'skip')", name="kind"),
    CheckConstraint("reason IS NULL OR reason IN ('unclear', 'off-topic', 'needs-context', 'other')", name="reason"),
    Index("ix_item_notes_project", "project_id", "resolved_at", "id"),
    Index("ix_item_notes_item", "item_id", "id"),)
