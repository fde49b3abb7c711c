import re
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from app.core.db import Base

POSTGRES_ONLY_INDEXES = {"ix_amplifiers_tags_gin"}
# PostgreSQL's monthly partitions of `clicks` (app/tracking/partitions.py): not models.
CLICK_PARTITION = re.compile(r"clicks_(y\d{4}m\d{2}|default)")


def _schema_diff(connection: Connection) -> list[Any]:
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if table is not None and CLICK_PARTITION.fullmatch(table.name):
            return False
        return not (type_ == "index" and name in POSTGRES_ONLY_INDEXES)

    context = MigrationContext.configure(
        connection, opts={"compare_type": False, "include_object": include}
    )
    return list(compare_metadata(context, Base.metadata))


class TestMigrations:
    async def test_migrations_match_the_models(self, app) -> None:
        async with app.state.engine.connect() as connection:
            diff = await connection.run_sync(_schema_diff)
        assert diff == []

    async def test_the_counting_triggers_are_in_place(self, app) -> None:
        """A later migration that rebuilds `deliveries` or `amplifiers` (SQLite's batch mode
        copies a table into a new one) must create these triggers again."""
        async with app.state.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            else:
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            names = set((await connection.exec_driver_sql(query)).scalars())
        assert {
            "deliveries_counted_insert",
            "deliveries_counted_update",
            "deliveries_counted_delete",
            "amplifiers_deletions_counted",
        } <= names
