from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from app.core.db import Base

POSTGRES_ONLY_INDEXES = {"ix_amplifiers_tags_gin"}


def _schema_diff(connection: Connection) -> list[Any]:
    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
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
