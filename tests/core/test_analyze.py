"""Planner statistics follow the bulk writes: a roster import and a send snapshot leave the
tables they filled analyzed, so the planner does not plan for an empty roster."""

from typing import Any

from sqlalchemy import text

from app.core.db import ANALYZE_AFTER_ROWS


async def _planned_rows(app: Any, table: str) -> int:
    """How many rows the planner believes `table` holds (0: no statistics; SQLite samples
    with `analysis_limit`, so its figure is close, not exact)."""
    async with app.state.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            value = await connection.scalar(
                text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
            )
            return max(0, int(value or 0))
        stats = await connection.scalar(
            text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        )
        if not stats:
            return 0
        found = await connection.scalar(
            text("SELECT max(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = :t"),
            {"t": table},
        )
        return int(found or 0)


class TestAnalyze:
    async def test_an_import_and_a_send_leave_their_tables_analyzed(self, app, org_a) -> None:
        rows = [
            {"email": f"a{i}@example.com", "networks": ["linkedin"]}
            for i in range(ANALYZE_AFTER_ROWS)
        ]
        imported = await org_a.editor.post("/api/v1/amplifiers/import", json=rows)
        assert imported.status_code == 200, imported.text
        assert await _planned_rows(app, "amplifiers") >= 0.9 * ANALYZE_AFTER_ROWS
        created = await org_a.editor.post(
            "/api/v1/campaigns",
            json={
                "name": "Launch",
                "subject": "Share",
                "networks": ["linkedin"],
                "messages": [{"text": "One", "url": "https://example.com/one"}],
            },
        )
        campaign = created.json()["id"]
        sent = await org_a.editor.post(f"/api/v1/campaigns/{campaign}/send")
        assert sent.status_code == 202, sent.text
        assert await _planned_rows(app, "deliveries") >= 0.9 * ANALYZE_AFTER_ROWS
        assert await _planned_rows(app, "links") >= 0.9 * 2 * ANALYZE_AFTER_ROWS
