import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Amplifier
from tests.amplifiers.conftest import SMALL_MAX_BYTES, SMALL_MAX_ROWS
from tests.factories import OrgClients, RoleClient

URL = "/api/v1/amplifiers"
IMPORT = f"{URL}/import"


async def import_csv(
    role: RoleClient, text: str | bytes, content_type: str = "text/csv"
) -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return await role.post(IMPORT, content=body, headers={"content-type": content_type})


async def import_ok(role: RoleClient, text: str | bytes, **kwargs: Any) -> dict[str, Any]:
    response = await import_csv(role, text, **kwargs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def roster(role: RoleClient) -> dict[str, dict[str, Any]]:
    """Every amplifier of the organization by email."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = (await role.get(URL, params=params)).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return {item["email"]: item for item in items}


async def count_amplifiers(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Amplifier)) or 0)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


class TestImportCsv:
    async def test_good_rows_kept_bad_rows_reported_with_line_numbers(
        self, org_a: OrgClients
    ) -> None:
        text = (
            "email,name,tags,networks\n"  # 1
            "ada@example.com,Ada,eng;london,linkedin|x\n"  # 2
            "not-an-email,Nobody,,\n"  # 3
            'bob@example.com,"Bob\n'  # 4: a quoted field over two lines
            'Smith",,\n'  # 5
            "cat@example.com,Cat,,myspace\n"  # 6
            "\n"  # 7: blank
            "dan@example.com,Dan,,\n"  # 8
            "eve@example.com,Eve,,,extra\n"  # 9
            "fay@example.com,Fay\n"  # 10
            '"gus@example.com","Gus ""the"" Great",sales,email\n'  # 11
        )
        body = await import_ok(org_a.editor, text)
        assert body["errors"] == [
            {"row": 3, "error": body["errors"][0]["error"]},
            {"row": 4, "error": "name: must not contain line breaks (CR, LF) or NUL characters"},
            {"row": 6, "error": body["errors"][2]["error"]},
            {"row": 9, "error": "columns: the row has 5 fields, the header has 4"},
            {"row": 10, "error": "columns: the row has 2 fields, the header has 4"},
        ]
        assert body["errors"][0]["error"].startswith("email: ")
        assert body["errors"][2]["error"].startswith("networks.0: ")
        assert "linkedin" in body["errors"][2]["error"]
        assert (body["created"], body["updated"], body["skipped"], body["unchanged"]) == (
            3,
            0,
            5,
            0,
        )
        people = await roster(org_a.viewer)
        assert set(people) == {"ada@example.com", "dan@example.com", "gus@example.com"}
        assert people["ada@example.com"]["tags"] == ["eng", "london"]
        assert people["ada@example.com"]["networks"] == ["linkedin", "x"]
        assert people["gus@example.com"]["name"] == 'Gus "the" Great'
        assert people["dan@example.com"]["name"] == "Dan"

    async def test_wrong_column_count_is_never_shifted(self, org_a: OrgClients) -> None:
        text = (
            "email,name,tags\n"
            "hal@example.com,Hal,a,linkedin\n"
            "ivy@example.com,linkedin\n"
            "jay@example.com\n"
        )
        body = await import_ok(org_a.editor, text)
        assert [e["row"] for e in body["errors"]] == [2, 3, 4]
        assert body["created"] == 0
        assert await roster(org_a.viewer) == {}

    async def test_header_is_case_insensitive_with_bom_crlf_and_blank_lines(
        self, org_a: OrgClients
    ) -> None:
        text = "\ufeff EMAIL , Name ,TAGS\r\n\r\nkim@example.com,Kim,a|b;c\r\n\r\n"
        body = await import_ok(org_a.editor, text)
        assert (body["created"], body["errors"]) == (1, [])
        kim = (await roster(org_a.viewer))["kim@example.com"]
        assert (kim["name"], kim["tags"]) == ("Kim", ["a", "b", "c"])

    async def test_separators_and_audience_columns(self, org_a: OrgClients) -> None:
        text = (
            "email,tags,networks,audience_linkedin,audience_x,locale\n"
            "lee@example.com, a | b ;a;;,LinkedIn| x ;linkedin,1200,,pt-br\n"
            "max@example.com,,,0,7,\n"
            "ned@example.com,,,-3,,\n"
            "oli@example.com,,,many,,\n"
        )
        body = await import_ok(org_a.editor, text)
        assert body["errors"] == [
            {"row": 4, "error": "audience_linkedin: Input should be greater than or equal to 0"},
            {"row": 5, "error": body["errors"][1]["error"]},
        ]
        assert body["errors"][1]["error"].startswith("audience_linkedin: ")
        people = await roster(org_a.viewer)
        lee, max_ = people["lee@example.com"], people["max@example.com"]
        assert (lee["tags"], lee["networks"], lee["audience"], lee["locale"]) == (
            ["a", "b"],
            ["linkedin", "x"],
            {"linkedin": 1200},
            "pt-BR",
        )
        assert (max_["tags"], max_["networks"], max_["audience"], max_["locale"]) == (
            [],
            [],
            {"linkedin": 0, "x": 7},
            "en",
        )

    async def test_duplicate_email_later_in_file_is_an_error(self, org_a: OrgClients) -> None:
        text = "email,name\npat@example.com,First\nPAT@example.com,Second\n"
        body = await import_ok(org_a.editor, text)
        assert body["errors"] == [{"row": 3, "error": "email: duplicate of row 2"}]
        assert (await roster(org_a.viewer))["pat@example.com"]["name"] == "First"

    async def test_empty_email_cell_is_an_error(self, org_a: OrgClients) -> None:
        body = await import_ok(org_a.editor, "email,name\n,Nobody\n")
        assert body["errors"] == [{"row": 2, "error": "email: is required"}]

    @pytest.mark.parametrize(
        ("text", "named"),
        [
            ("email,name,nickname,favourite\na@example.com,A,a,b\n", ["nickname", "favourite"]),
            ("email,audience_myspace\na@example.com,3\n", ["audience_myspace"]),
            ("email,name,Email\na@example.com,A,a@example.com\n", ["email"]),
            ("name,tags\nA,b\n", ["email"]),
            ("ada@example.com,Ada\n", ["ada@example.com"]),
        ],
    )
    async def test_bad_header_rejects_the_whole_file(
        self, org_a: OrgClients, text: str, named: list[str]
    ) -> None:
        body = assert_problem(await import_csv(org_a.editor, text), 422)
        for column in named:
            assert column in body["detail"]
        assert await roster(org_a.viewer) == {}

    @pytest.mark.parametrize("text", ["", "\n\n", "\ufeff"])
    async def test_empty_file_is_422(self, org_a: OrgClients, text: str) -> None:
        body = assert_problem(await import_csv(org_a.editor, text), 422)
        assert "header" in body["detail"]

    async def test_invalid_utf8_is_422_with_byte_offset(self, org_a: OrgClients) -> None:
        body = b"email,name\nqed@example.com,Ren\xe9\n"
        problem = assert_problem(await import_csv(org_a.editor, body), 422)
        assert "byte offset 30" in problem["detail"]
        assert "line 2" in problem["detail"]
        assert await roster(org_a.viewer) == {}

    async def test_reimport_changes_nothing(self, org_a: OrgClients) -> None:
        text = (
            "email,name,tags,networks,locale,audience_x\n"
            "Ray@Example.com,Ray,a;b,x,en,10\n"
            "sue@example.com,,,,,\n"
            "bad,,,,,\n"
        )
        first = await import_ok(org_a.editor, text)
        assert (first["created"], first["updated"], first["skipped"]) == (2, 0, 1)
        before = await roster(org_a.viewer)
        again = await import_ok(org_a.editor, text)
        assert (again["created"], again["updated"], again["unchanged"], again["skipped"]) == (
            0,
            0,
            2,
            1,
        )
        assert await roster(org_a.viewer) == before

    async def test_updates_only_the_columns_in_the_file(self, org_a: OrgClients) -> None:
        created = await org_a.editor.post(
            URL,
            json={
                "email": "tia@example.com",
                "name": "Tia",
                "tags": ["old"],
                "networks": ["x"],
                "audience": {"x": 5, "linkedin": 9},
                "locale": "de",
            },
        )
        original = created.json()
        text = "email,tags,audience_x\nTIA@example.com,,6\n"
        body = await import_ok(org_a.editor, text)
        assert (body["created"], body["updated"], body["unchanged"]) == (0, 1, 0)
        tia = (await org_a.viewer.get(f"{URL}/{original['id']}")).json()
        assert tia["email"] == "TIA@example.com"
        assert tia["tags"] == []
        assert tia["audience"] == {"x": 6, "linkedin": 9}
        assert (tia["name"], tia["networks"], tia["locale"]) == ("Tia", ["x"], "de")
        assert tia["updated_at"] > original["updated_at"]

    async def test_import_never_resubscribes(
        self, org_a: OrgClients, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        uma = (await org_a.editor.post(URL, json={"email": "uma@example.com"})).json()
        await org_a.editor.patch(f"{URL}/{uma['id']}", json={"status": "unsubscribed"})
        gone = (await org_a.editor.post(URL, json={"email": "vic@example.com"})).json()
        await org_a.editor.patch(f"{URL}/{gone['id']}", json={"status": "bounced"})
        await org_a.editor.delete(f"{URL}/{gone['id']}")

        text = "email,name\numa@example.com,Uma\nvic@example.com,Vic\nwes@example.com,Wes\n"
        body = await import_ok(org_a.editor, text)
        assert (body["created"], body["updated"]) == (2, 1)
        people = await roster(org_a.viewer)
        assert people["uma@example.com"]["status"] == "unsubscribed"
        assert people["uma@example.com"]["name"] == "Uma"
        assert people["vic@example.com"]["status"] == "bounced"
        assert people["wes@example.com"]["status"] == "active"

    @pytest.mark.parametrize(
        "content_type", ["text/csv; charset=utf-8", "application/csv", "text/plain", "TEXT/CSV"]
    )
    async def test_csv_content_types(self, org_a: OrgClients, content_type: str) -> None:
        body = await import_ok(org_a.editor, "email\nxan@example.com\n", content_type=content_type)
        assert body["created"] == 1

    @pytest.mark.parametrize(
        "content_type",
        ["application/xml", "multipart/form-data; boundary=x", "text/csv; charset=latin-1", ""],
    )
    async def test_other_content_types_are_415(self, org_a: OrgClients, content_type: str) -> None:
        response = await import_csv(org_a.editor, "email\nyan@example.com\n", content_type)
        assert_problem(response, 415)
        assert await roster(org_a.viewer) == {}

    async def test_viewer_cannot_import(self, org_a: OrgClients) -> None:
        assert_problem(await import_csv(org_a.viewer, "email\nzed@example.com\n"), 403)

    async def test_import_stays_in_its_organization(
        self, org_a: OrgClients, org_b: OrgClients
    ) -> None:
        theirs = (await org_b.editor.post(URL, json={"email": "b@example.com", "name": "B"})).json()
        body = await import_ok(org_a.editor, "email,name\nb@example.com,Mine\n")
        assert body["created"] == 1
        assert (await org_b.viewer.get(f"{URL}/{theirs['id']}")).json()["name"] == "B"
        assert list(await roster(org_b.viewer)) == ["b@example.com"]

    async def test_many_bad_rows_are_truncated_in_the_answer(self, org_a: OrgClients) -> None:
        text = "email\n" + "".join(f"bad{i}\n" for i in range(1005)) + "ok@example.com\n"
        body = await import_ok(org_a.editor, text)
        assert body["skipped"] == 1005
        assert len(body["errors"]) == 1000
        assert body["errors_truncated"] is True
        assert body["created"] == 1

    async def test_thousands_of_rows(self, org_a: OrgClients) -> None:
        rows = "".join(f"amp{i}@example.com,Amp {i},t{i % 3},linkedin\n" for i in range(2500))
        text = "email,name,tags,networks\n" + rows
        first = await import_ok(org_a.editor, text)
        assert (first["created"], first["skipped"]) == (2500, 0)
        changed = text.replace("Amp 7,", "Amp seven,")
        second = await import_ok(org_a.editor, changed)
        assert (second["created"], second["updated"], second["unchanged"]) == (0, 1, 2499)
        tagged = await org_a.viewer.get(URL, params={"tag": "t1", "limit": 500})
        assert len(tagged.json()["items"]) == 500


class TestImportJson:
    async def test_rows_number_from_one(self, org_a: OrgClients) -> None:
        rows = [
            {"email": "ann@example.com", "name": "Ann", "audience": {"x": 3}},
            {"email": "ben@example.com", "nickname": "b"},
            "cid@example.com",
            {"email": "dee@example.com", "networks": ["myspace"]},
            {"email": "ANN@example.com"},
            {"name": "No email"},
        ]
        response = await org_a.editor.post(IMPORT, json=rows)
        assert response.status_code == 200
        body = response.json()
        assert [(e["row"], e["error"].split(":")[0]) for e in body["errors"]] == [
            (2, "nickname"),
            (3, "row"),
            (4, "networks.0"),
            (5, "email"),
            (6, "email"),
        ]
        assert body["errors"][3]["error"] == "email: duplicate of row 1"
        assert (body["created"], body["skipped"]) == (1, 5)
        ann = (await roster(org_a.viewer))["ann@example.com"]
        assert (ann["name"], ann["audience"]) == ("Ann", {"x": 3})

    async def test_updates_only_given_fields(self, org_a: OrgClients) -> None:
        created = await org_a.editor.post(
            URL, json={"email": "eli@example.com", "name": "Eli", "tags": ["a"]}
        )
        rows = [{"email": "eli@example.com", "networks": ["x"]}]
        body = (await org_a.editor.post(IMPORT, json=rows)).json()
        assert body["updated"] == 1
        eli = (await org_a.viewer.get(f"{URL}/{created.json()['id']}")).json()
        assert (eli["name"], eli["tags"], eli["networks"]) == ("Eli", ["a"], ["x"])
        again = (await org_a.editor.post(IMPORT, json=rows)).json()
        assert (again["updated"], again["unchanged"]) == (0, 1)

    @pytest.mark.parametrize("body", [b'{"email": "a@example.com"}', b'"string"'])
    async def test_not_an_array_is_422(self, org_a: OrgClients, body: bytes) -> None:
        response = await org_a.editor.post(
            IMPORT, content=body, headers={"content-type": "application/json"}
        )
        assert_problem(response, 422)

    @pytest.mark.parametrize("body", [b"[{", b"not json", b"\xff[]"])
    async def test_not_json_is_400(self, org_a: OrgClients, body: bytes) -> None:
        response = await org_a.editor.post(
            IMPORT, content=body, headers={"content-type": "application/json"}
        )
        assert_problem(response, 400)


class TestImportCaps:
    async def test_too_many_csv_rows_is_413_and_nothing_written(
        self,
        small_client: httpx.AsyncClient,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        editor = RoleClient(small_client, org_a.editor.key)
        rows = "".join(f"r{i}@example.com\n" for i in range(SMALL_MAX_ROWS + 1))
        body = assert_problem(await import_csv(editor, "email\n" + rows), 413)
        assert str(SMALL_MAX_ROWS) in body["detail"]
        assert "nothing was imported" in body["detail"]
        assert await count_amplifiers(sessionmaker) == 0

    async def test_bad_rows_count_towards_the_cap(
        self,
        small_client: httpx.AsyncClient,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        editor = RoleClient(small_client, org_a.editor.key)
        text = "email\nok@example.com\n" + "bad\n" * SMALL_MAX_ROWS
        assert_problem(await import_csv(editor, text), 413)
        assert await count_amplifiers(sessionmaker) == 0

    async def test_rows_at_the_cap_are_imported(
        self, small_client: httpx.AsyncClient, org_a: OrgClients
    ) -> None:
        editor = RoleClient(small_client, org_a.editor.key)
        rows = "".join(f"r{i}@example.com\n\n" for i in range(SMALL_MAX_ROWS))
        body = await import_ok(editor, "email\n" + rows)
        assert body["created"] == SMALL_MAX_ROWS

    async def test_too_many_json_rows_is_413(
        self,
        small_client: httpx.AsyncClient,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        editor = RoleClient(small_client, org_a.editor.key)
        rows = [{"email": f"j{i}@example.com"} for i in range(SMALL_MAX_ROWS + 1)]
        assert_problem(await editor.post(IMPORT, json=rows), 413)
        assert await count_amplifiers(sessionmaker) == 0

    async def test_body_over_the_byte_cap_is_413(
        self,
        small_client: httpx.AsyncClient,
        org_a: OrgClients,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        editor = RoleClient(small_client, org_a.editor.key)
        text = "email,name\n" + "".join(f"b{i}@example.com,{'x' * 150}\n" for i in range(3))
        text += "padding@example.com," + "y" * SMALL_MAX_BYTES + "\n"
        assert_problem(await import_csv(editor, text), 413)

        async def chunks() -> AsyncIterator[bytes]:
            data = text.encode()
            for start in range(0, len(data), 512):
                yield data[start : start + 512]

        # Streamed without a Content-Length: the cap is enforced while reading.
        streamed = await editor.post(IMPORT, content=chunks(), headers={"content-type": "text/csv"})
        assert_problem(streamed, 413)
        assert await count_amplifiers(sessionmaker) == 0

    async def test_json_import_accepts_one_object_per_row(
        self, small_client: httpx.AsyncClient, org_a: OrgClients
    ) -> None:
        editor = RoleClient(small_client, org_a.editor.key)
        rows = [{"email": f"s{i}@example.com"} for i in range(SMALL_MAX_ROWS)]
        response = await editor.post(IMPORT, content=json.dumps(rows).encode(), headers={})
        assert_problem(response, 415)
        ok = await editor.post(
            IMPORT, content=json.dumps(rows).encode(), headers={"content-type": "application/json"}
        )
        assert ok.json()["created"] == SMALL_MAX_ROWS


class TestImportPreferences:
    async def test_frequency_and_timezone_columns(self, org_a: OrgClients) -> None:
        result = await import_ok(
            org_a.editor,
            "email,frequency,timezone\n"
            "ann@example.com,daily,Europe/Copenhagen\n"
            "ben@example.com,Weekly,\n"
            "cat@example.com,,America/New_York\n"
            "dan@example.com,hourly,UTC\n"
            "eve@example.com,daily,Europe/Nowhere\n",
        )
        assert (result["created"], result["skipped"]) == (3, 2)
        assert [e["row"] for e in result["errors"]] == [5, 6]
        assert result["errors"][0]["error"].startswith("frequency:")
        assert result["errors"][1]["error"].startswith("timezone:")
        assert "IANA" in result["errors"][1]["error"]
        people = await roster(org_a.viewer)
        assert (people["ann@example.com"]["frequency"], people["ann@example.com"]["timezone"]) == (
            "daily",
            "Europe/Copenhagen",
        )
        assert (people["ben@example.com"]["frequency"], people["ben@example.com"]["timezone"]) == (
            "weekly",
            None,
        )
        assert people["cat@example.com"]["frequency"] == "each"

        again = await import_ok(org_a.editor, "email,frequency\nann@example.com,each\n")
        assert again["updated"] == 1
        ann = (await roster(org_a.viewer))["ann@example.com"]
        assert (ann["frequency"], ann["timezone"]) == ("each", "Europe/Copenhagen")
