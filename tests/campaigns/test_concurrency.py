"""Concurrent edits of one draft keep positions contiguous (the campaign row is locked)."""

import asyncio

from app.models import CampaignStatus
from tests.campaigns.conftest import CAMPAIGNS, create_campaign, message_payload, set_status
from tests.factories import OrgClients


class TestConcurrentEdits:
    async def test_concurrent_appends_get_distinct_positions(self, org_a: OrgClients) -> None:
        campaign = await create_campaign(org_a.editor, messages=[message_payload("first")])
        url = f"{CAMPAIGNS}/{campaign['id']}/messages"
        responses = await asyncio.gather(
            *(org_a.editor.post(url, json=message_payload(f"m{i}")) for i in range(8))
        )
        assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
        messages = (await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}")).json()["messages"]
        assert [m["position"] for m in messages] == list(range(9))
        assert sorted(m["text"] for m in messages[1:]) == sorted(f"m{i}" for i in range(8))

    async def test_concurrent_moves_adds_and_deletes_stay_contiguous(
        self, org_a: OrgClients
    ) -> None:
        texts = [f"m{i}" for i in range(6)]
        campaign = await create_campaign(org_a.editor, messages=[message_payload(t) for t in texts])
        base = f"{CAMPAIGNS}/{campaign['id']}/messages"
        ids = [m["id"] for m in campaign["messages"]]
        responses = await asyncio.gather(
            org_a.editor.patch(f"{base}/{ids[5]}", json={"position": 0}),
            org_a.editor.post(base, json=message_payload("new", position=2)),
            org_a.editor.delete(f"{base}/{ids[1]}"),
            org_a.editor.patch(f"{base}/{ids[0]}", json={"position": 3}),
            org_a.editor.post(base, json=message_payload("newer")),
        )
        assert all(r.status_code in (200, 201, 204) for r in responses), [r.text for r in responses]
        messages = (await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}")).json()["messages"]
        assert [m["position"] for m in messages] == list(range(7))
        assert {m["text"] for m in messages} == {*texts, "new", "newer"} - {"m1"}

    async def test_edit_racing_a_status_change_never_slips_through(
        self, org_a: OrgClients, sessionmaker
    ) -> None:
        campaign = await create_campaign(org_a.editor)
        base = f"{CAMPAIGNS}/{campaign['id']}/messages"
        results = await asyncio.gather(
            *(org_a.editor.post(base, json=message_payload(f"m{i}")) for i in range(4)),
            set_status(sessionmaker, campaign["id"], CampaignStatus.SENDING),
        )
        codes = [r.status_code for r in results[:4]]
        assert set(codes) <= {201, 409}
        messages = (await org_a.viewer.get(f"{CAMPAIGNS}/{campaign['id']}")).json()["messages"]
        assert len(messages) == 1 + codes.count(201)
        assert [m["position"] for m in messages] == list(range(len(messages)))
