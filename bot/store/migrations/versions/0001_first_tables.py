"""First tables: candidates and their lifecycle, votes, promotions, champions, Slack, outbox, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATES = (
    "pending", "blocked", "approved", "rejected", "expired",
    "promoting", "promoted", "failed", "rolled_back",
)  # fmt: skip
INITIAL_STATES = ("pending", "blocked", "approved")
# The lifecycle as of this revision (bot.domain.promotion.TRANSITIONS); a test keeps them equal.
TRANSITIONS = (
    ("pending", "approved"), ("pending", "rejected"), ("pending", "expired"),
    ("pending", "blocked"), ("blocked", "pending"), ("blocked", "approved"),
    ("blocked", "rejected"), ("blocked", "expired"), ("approved", "promoting"),
    ("approved", "rejected"), ("promoting", "promoted"), ("promoting", "failed"),
    ("promoting", "blocked"), ("failed", "promoting"), ("promoted", "rolled_back"),
)  # fmt: skip
LIVE = "state IN ('pending', 'blocked', 'approved', 'promoting')"


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _time(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("source_env", sa.String(32), nullable=False),
        sa.Column("target_env", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requester", sa.String(32)),
        sa.Column("author", sa.String(32)),
        sa.Column("bundle", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("champion_version", sa.String(64)),
        sa.Column("champion_metrics", sa.JSON()),
        sa.Column("verdict", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text()),
        _time("created_at"),
        _time("updated_at"),
        _time("expires_at", nullable=True),
        sa.CheckConstraint(f"state IN {_in(STATES)}", name=op.f("ck_candidates_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidates")),
    )
    op.create_index("ix_candidates_state", "candidates", ["state"])
    op.create_index(
        "uq_candidates_live",
        "candidates",
        ["model", "version", "target_env"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )

    legal = op.create_table(
        "legal_transitions",
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("from_state", "to_state", name=op.f("pk_legal_transitions")),
    )
    op.bulk_insert(legal, [{"from_state": a, "to_state": b} for a, b in TRANSITIONS])

    op.create_table(
        "candidate_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text()),
        _time("at"),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_candidate_transitions_candidate_id_candidates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_candidate_transitions")),
    )
    op.create_index(
        op.f("ix_candidate_transitions_candidate_id"), "candidate_transitions", ["candidate_id"]
    )

    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("voter", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text()),
        _time("at"),
        sa.CheckConstraint("decision IN ('approve', 'reject')", name=op.f("ck_votes_decision")),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name=op.f("fk_votes_candidate_id_candidates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("candidate_id", "voter", name="uq_votes_one_per_person"),
    )

    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("target_env", sa.String(32), nullable=False),
        sa.Column("previous_champion", sa.String(64)),
        sa.Column("target_version", sa.String(64)),
        _time("started_at"),
        _time("finished_at", nullable=True),
        sa.Column("error", sa.Text()),
        sa.CheckConstraint("kind IN ('promote', 'rollback')", name=op.f("ck_promotions_kind")),
        sa.CheckConstraint(
            "state IN ('running', 'succeeded', 'failed', 'compensated')",
            name=op.f("ck_promotions_state"),
        ),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_promotions_candidate_id_candidates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
    )
    op.create_index(op.f("ix_promotions_candidate_id"), "promotions", ["candidate_id"])
    op.create_index(
        "uq_promotions_running",
        "promotions",
        ["model", "target_env"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )

    op.create_table(
        "promotion_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("started_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_steps_promotion_id_promotions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_steps")),
        sa.UniqueConstraint("promotion_id", "step", name="uq_promotion_steps_step"),
    )

    op.create_table(
        "champion_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("environment", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("previous_version", sa.String(64)),
        sa.Column("images", sa.JSON(), nullable=False),
        sa.Column("promotion_id", sa.Integer()),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        _time("at"),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_champion_history_promotion_id_promotions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_champion_history")),
    )
    op.create_index(
        "ix_champion_history_model_env", "champion_history", ["model", "environment", "id"]
    )

    op.create_table(
        "slack_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_id"],
            ["candidates.id"],
            name=op.f("fk_slack_messages_candidate_id_candidates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_messages")),
        sa.UniqueConstraint("candidate_id", "kind", name="uq_slack_messages_kind"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ordering_key", sa.String(64), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("candidate_id", sa.Integer()),
        sa.Column("dedupe_key", sa.String(255)),
        _time("created_at"),
        _time("deliver_after"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text()),
        sa.ForeignKeyConstraint(
            ["candidate_id"], ["candidates.id"], name=op.f("fk_outbox_candidate_id_candidates")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index("ix_outbox_due", "outbox", ["delivered_at", "deliver_after", "id"])

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _time("at"),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _postgresql_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION gatekeeper_check_transition() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                IF NEW.state NOT IN {_in(INITIAL_STATES)} THEN
                    RAISE EXCEPTION 'a candidate cannot start as %', NEW.state
                        USING ERRCODE = 'check_violation';
                END IF;
            ELSIF NEW.state <> OLD.state AND NOT EXISTS (
                SELECT 1 FROM legal_transitions
                WHERE from_state = OLD.state AND to_state = NEW.state
            ) THEN
                RAISE EXCEPTION 'illegal candidate transition % -> %', OLD.state, NEW.state
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER candidates_legal_transition BEFORE INSERT OR UPDATE OF state "
        "ON candidates FOR EACH ROW EXECUTE FUNCTION gatekeeper_check_transition()"
    )
    op.execute(
        """
        CREATE FUNCTION gatekeeper_audit_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gatekeeper_audit_append_only()"
    )


def _sqlite_triggers() -> None:
    op.execute(
        f"""
        CREATE TRIGGER candidates_initial_state BEFORE INSERT ON candidates
        WHEN NEW.state NOT IN {_in(INITIAL_STATES)}
        BEGIN SELECT RAISE(ABORT, 'a candidate cannot start in that state'); END
        """
    )
    op.execute(
        """
        CREATE TRIGGER candidates_legal_transition BEFORE UPDATE OF state ON candidates
        WHEN NEW.state <> OLD.state AND NOT EXISTS (
            SELECT 1 FROM legal_transitions
            WHERE from_state = OLD.state AND to_state = NEW.state
        )
        BEGIN SELECT RAISE(ABORT, 'illegal candidate transition'); END
        """
    )
    for event in ("UPDATE", "DELETE"):
        op.execute(
            f"""
            CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log
            BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION gatekeeper_audit_append_only()")
        op.execute("DROP TRIGGER candidates_legal_transition ON candidates")
        op.execute("DROP FUNCTION gatekeeper_check_transition()")
    for table in (
        "audit_log", "outbox", "slack_messages", "champion_history", "promotion_steps",
        "promotions", "votes", "candidate_transitions", "legal_transitions", "candidates",
    ):  # fmt: skip
        op.drop_table(table)
