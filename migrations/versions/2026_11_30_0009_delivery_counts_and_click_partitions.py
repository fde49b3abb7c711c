"""delivery counts kept by triggers, roster deletions, clicks partitioned by month (PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Deliveries per (campaign, status), whatever writes the status: the triggers see every
# INSERT, UPDATE and DELETE of `deliveries`, so no code path (present or future, any status
# string) can leave the counts behind. PostgreSQL counts once per statement from the
# transition tables (a 100,000-row snapshot or cancel is one upsert per status, in key order,
# instead of 100,000 updates of the same counter row); SQLite, which has no statement
# triggers, once per changed row (cheap: no MVCC versions, one writer).
POSTGRESQL_DELIVERY_TRIGGERS = [
    """
CREATE FUNCTION count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    campaigns integer[];
    statuses text[];
    changes bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(campaign_id ORDER BY campaign_id, status),
               array_agg(status ORDER BY campaign_id, status),
               array_agg(change ORDER BY campaign_id, status)
        INTO campaigns, statuses, changes
        FROM (SELECT campaign_id, status, count(*) AS change FROM new_rows
              GROUP BY campaign_id, status) AS c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(campaign_id ORDER BY campaign_id, status),
               array_agg(status ORDER BY campaign_id, status),
               array_agg(change ORDER BY campaign_id, status)
        INTO campaigns, statuses, changes
        FROM (SELECT campaign_id, status, -count(*) AS change FROM old_rows
              GROUP BY campaign_id, status) AS c;
    ELSE  -- statuses that did not change cancel out: a lease renewal counts nothing
        SELECT array_agg(campaign_id ORDER BY campaign_id, status),
               array_agg(status ORDER BY campaign_id, status),
               array_agg(change ORDER BY campaign_id, status)
        INTO campaigns, statuses, changes
        FROM (SELECT campaign_id, status, sum(change) AS change FROM (
                  SELECT campaign_id, status, 1 AS change FROM new_rows
                  UNION ALL
                  SELECT campaign_id, status, -1 FROM old_rows) AS both_sides
              GROUP BY campaign_id, status HAVING sum(change) <> 0) AS c;
    END IF;
    IF campaigns IS NULL THEN
        RETURN NULL;
    END IF;
    -- Every counter row of the campaigns at once, in key order, before changing any: two
    -- transactions moving one campaign's deliveries between different statuses (a worker's
    -- sent and failed outcomes, a bounce, a hold) queue up instead of deadlocking.
    PERFORM 1 FROM delivery_counts WHERE campaign_id = ANY (campaigns)
    ORDER BY campaign_id, status FOR UPDATE;
    IF TG_OP = 'DELETE' THEN  -- no upsert: the campaign itself may be going (cascade)
        UPDATE delivery_counts AS d SET deliveries = d.deliveries + c.change
        FROM unnest(campaigns, statuses, changes) AS c (campaign_id, status, change)
        WHERE d.campaign_id = c.campaign_id AND d.status = c.status;
    ELSE
        INSERT INTO delivery_counts (campaign_id, status, deliveries)
        SELECT * FROM unnest(campaigns, statuses, changes)
        ON CONFLICT (campaign_id, status)
        DO UPDATE SET deliveries = delivery_counts.deliveries + excluded.deliveries;
    END IF;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries()",
    "CREATE TRIGGER deliveries_counted_update AFTER UPDATE ON deliveries "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries()",
    "CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries()",
]
_SQLITE_COUNT_NEW = (
    "INSERT INTO delivery_counts (campaign_id, status, deliveries) "
    "VALUES (NEW.campaign_id, NEW.status, 1) "
    "ON CONFLICT (campaign_id, status) DO UPDATE SET deliveries = deliveries + 1;"
)
_SQLITE_UNCOUNT_OLD = (
    "UPDATE delivery_counts SET deliveries = deliveries - 1 "
    "WHERE campaign_id = OLD.campaign_id AND status = OLD.status;"
)
SQLITE_DELIVERY_TRIGGERS = [
    "CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries "
    f"BEGIN {_SQLITE_COUNT_NEW} END",
    "CREATE TRIGGER deliveries_counted_update AFTER UPDATE OF status, campaign_id ON deliveries "
    "WHEN OLD.status IS NOT NEW.status OR OLD.campaign_id IS NOT NEW.campaign_id "
    f"BEGIN {_SQLITE_UNCOUNT_OLD} {_SQLITE_COUNT_NEW} END",
    f"CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries "
    f"BEGIN {_SQLITE_UNCOUNT_OLD} END",
]

# A deleted amplifier leaves no row behind to date the change: the organization counts them,
# so statistics' cache versions see a deletion in one row instead of counting the roster.
POSTGRESQL_ROSTER_TRIGGERS = [
    """
CREATE FUNCTION count_roster_deletions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations AS o SET roster_deletions = o.roster_deletions + gone.amplifiers
    FROM (SELECT organization_id, count(*) AS amplifiers FROM old_rows
          GROUP BY organization_id) AS gone
    WHERE o.id = gone.organization_id;
    RETURN NULL;
END
$$
""",
    "CREATE TRIGGER amplifiers_deletions_counted AFTER DELETE ON amplifiers "
    "REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION count_roster_deletions()",
]
SQLITE_ROSTER_TRIGGERS = [
    "CREATE TRIGGER amplifiers_deletions_counted AFTER DELETE ON amplifiers BEGIN "
    "UPDATE organizations SET roster_deletions = roster_deletions + 1 "
    "WHERE id = OLD.organization_id; END",
]

CLICK_INDEXES = {
    "ix_clicks_link_at": "link_id, at",
    "ix_clicks_at": "at",
    "ix_clicks_burst": "delivery_id, visitor_key, at",
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "delivery_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_delivery_counts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "status", name=op.f("pk_delivery_counts")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO delivery_counts (campaign_id, status, deliveries) "
        "SELECT campaign_id, status, count(*) FROM deliveries GROUP BY campaign_id, status"
    )
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("roster_deletions", sa.Integer(), nullable=False, server_default="0")
        )
    triggers = (
        POSTGRESQL_DELIVERY_TRIGGERS + POSTGRESQL_ROSTER_TRIGGERS
        if postgresql
        else SQLITE_DELIVERY_TRIGGERS + SQLITE_ROSTER_TRIGGERS
    )
    for statement in triggers:
        op.execute(statement)
    if postgresql:
        _partition_clicks()


def _month(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def _partition_clicks() -> None:
    """Rebuild `clicks` as a table partitioned by month of `at` (the primary key becomes
    (id, at): a partitioned table's unique keys hold its partition key), one partition per
    month from the oldest click to next month and a default one, and copy the rows over.
    app/tracking/partitions.py keeps months created ahead from then on."""
    connection = op.get_bind()
    op.execute("ALTER TABLE clicks RENAME TO clicks_unpartitioned")
    op.execute("ALTER TABLE clicks_unpartitioned RENAME CONSTRAINT pk_clicks TO pk_clicks_old")
    op.execute(
        "ALTER TABLE clicks_unpartitioned "
        "RENAME CONSTRAINT fk_clicks_link_id_links TO fk_clicks_old_link_id_links"
    )
    for index in CLICK_INDEXES:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_old")
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE clicks (LIKE clicks_unpartitioned INCLUDING DEFAULTS, "
        "CONSTRAINT pk_clicks PRIMARY KEY (id, at), "
        "CONSTRAINT fk_clicks_link_id_links FOREIGN KEY (link_id) REFERENCES links (id) "
        "ON DELETE CASCADE) PARTITION BY RANGE (at)"
    )
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY clicks.id")
    for index, columns in CLICK_INDEXES.items():
        op.execute(f"CREATE INDEX {index} ON clicks ({columns})")
    now = datetime.now(UTC)
    oldest = connection.scalar(sa.text("SELECT min(at) FROM clicks_unpartitioned")) or now
    oldest = min(oldest.astimezone(UTC), now)
    year, month = oldest.year, oldest.month
    last = _month(now.year, now.month + 1)
    while (start := _month(year, month)) <= last:
        end = _month(year, month + 1)
        op.execute(
            f"CREATE TABLE clicks_y{start:%Y}m{start:%m} PARTITION OF clicks "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        year, month = end.year, end.month
    op.execute("CREATE TABLE clicks_default PARTITION OF clicks DEFAULT")
    op.execute("INSERT INTO clicks SELECT * FROM clicks_unpartitioned")
    op.execute("DROP TABLE clicks_unpartitioned")


def _unpartition_clicks() -> None:
    op.execute("ALTER TABLE clicks RENAME TO clicks_partitioned")
    op.execute("ALTER TABLE clicks_partitioned RENAME CONSTRAINT pk_clicks TO pk_clicks_parted")
    op.execute(
        "ALTER TABLE clicks_partitioned "
        "RENAME CONSTRAINT fk_clicks_link_id_links TO fk_clicks_parted_link_id_links"
    )
    for index in CLICK_INDEXES:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_parted")
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY NONE")
    op.execute(
        "CREATE TABLE clicks (LIKE clicks_partitioned INCLUDING DEFAULTS, "
        "CONSTRAINT pk_clicks PRIMARY KEY (id), "
        "CONSTRAINT fk_clicks_link_id_links FOREIGN KEY (link_id) REFERENCES links (id) "
        "ON DELETE CASCADE)"
    )
    op.execute("ALTER SEQUENCE clicks_id_seq OWNED BY clicks.id")
    op.execute("INSERT INTO clicks SELECT * FROM clicks_partitioned")
    op.execute("DROP TABLE clicks_partitioned")  # its partitions go with it
    for index, columns in CLICK_INDEXES.items():
        op.execute(f"CREATE INDEX {index} ON clicks ({columns})")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        _unpartition_clicks()
        op.execute("DROP TRIGGER amplifiers_deletions_counted ON amplifiers")
        op.execute("DROP FUNCTION count_roster_deletions()")
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER deliveries_counted_{name} ON deliveries")
        op.execute("DROP FUNCTION count_deliveries()")
    else:
        op.execute("DROP TRIGGER amplifiers_deletions_counted")
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER deliveries_counted_{name}")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("roster_deletions")
    op.drop_table("delivery_counts")
