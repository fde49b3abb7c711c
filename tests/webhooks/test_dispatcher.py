import asyncio
import json
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from app.core.db import session_scope
from app.models import WebhookEndpoint, WebhookEvent, WebhookMessage
from app.webhooks.events import Event, EventType, emit, emit_events
from app.webhooks.store import purge_finished
from tests.factories import OrgClients, metric_sample, scrape_metrics
from tests.sending.conftest import wait_until
from tests.webhooks.conftest import FAST_RETRIES, create_endpoint
from tests.webhooks.receiver import Received, Receiver


async def _emit(app: FastAPI, org: OrgClients, type_: EventType, data: dict[str, Any]) -> None:
    async for session in session_scope(app.state.sessionmaker):
        await emit(session, organization_id=org.organization_id, type=type_, data=data)


async def _attempts(org: OrgClients, hook_id: int) -> list[dict[str, Any]]:
    response = await org.admin.get(f"/api/v1/webhooks/{hook_id}/attempts")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


class TestDelivery:
    async def test_signed_the_standard_webhooks_way(
        self, app: FastAPI, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        hook = await create_endpoint(private_org, receiver.url, ["campaign.sent"])
        await _emit(app, private_org, EventType.CAMPAIGN_SENT, {"campaign_id": 7, "name": "Q4"})
        async with run_dispatcher():
            await wait_until(lambda: len(receiver.received) == 1)
        request = receiver.received[0]
        payload = Webhook(hook["secret"]).verify(request.body, request.headers)
        assert payload["type"] == "campaign.sent"
        assert payload["data"] == {"campaign_id": 7, "name": "Q4"}
        assert payload["timestamp"].endswith("Z")
        assert request.headers["webhook-id"].startswith("msg_")
        assert request.headers["content-type"] == "application/json"
        tampered = dict(request.headers, **{"webhook-signature": "v1,AAAA"})
        try:
            Webhook(hook["secret"]).verify(request.body, tampered)
        except Exception:
            pass
        else:
            raise AssertionError("a wrong signature verified")

    async def test_only_subscribed_endpoints_of_the_organization(
        self,
        app: FastAPI,
        private_org: OrgClients,
        org_b: OrgClients,
        receiver: Receiver,
        run_dispatcher: Any,
    ) -> None:
        await create_endpoint(private_org, receiver.url + "/sent", ["campaign.sent"])
        await create_endpoint(private_org, receiver.url + "/failed", ["delivery.failed"])
        await _emit(app, private_org, EventType.CAMPAIGN_SENT, {"campaign_id": 1})
        await _emit(app, org_b, EventType.CAMPAIGN_SENT, {"campaign_id": 2})
        async with run_dispatcher():
            await wait_until(lambda: len(receiver.received) >= 1)
            await asyncio.sleep(0.3)
        assert len(receiver.received) == 1
        assert json.loads(receiver.received[0].body)["data"] == {"campaign_id": 1}
        async with app.state.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(WebhookEvent)) == 0

    async def test_test_event_reaches_the_endpoint(
        self, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        hook = await create_endpoint(private_org, receiver.url, ["campaign.sent"])
        response = await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        assert response.status_code == 202
        async with run_dispatcher():
            await wait_until(lambda: len(receiver.received) == 1)
            await wait_until(lambda: _has_attempts(private_org, hook["id"], 1))
        payload = Webhook(hook["secret"]).verify(
            receiver.received[0].body, receiver.received[0].headers
        )
        assert payload["type"] == "webhook.test"
        [attempt] = await _attempts(private_org, hook["id"])
        assert attempt["status_code"] == 200
        assert attempt["error"] is None
        assert attempt["attempt"] == 1
        assert attempt["next_at"] is None
        assert attempt["event_id"] == receiver.received[0].headers["webhook-id"]


async def _has_attempts(org: OrgClients, hook_id: int, count: int) -> bool:
    return len(await _attempts(org, hook_id)) >= count


class TestRetries:
    async def test_500s_are_retried_with_the_same_id(
        self, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        async def fail_twice(_request: Received, seen: int) -> int:
            return 500 if seen < 2 else 204

        receiver.behaviour = fail_twice
        hook = await create_endpoint(private_org, receiver.url, ["webhook.test"])
        await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        async with run_dispatcher():
            await wait_until(lambda: _has_attempts(private_org, hook["id"], 3))
        attempts = await _attempts(private_org, hook["id"])
        assert [a["status_code"] for a in attempts] == [500, 500, 204]
        assert [a["attempt"] for a in attempts] == [1, 2, 3]
        assert attempts[0]["error"] == "HTTP 500"
        assert attempts[0]["next_at"] is not None and attempts[2]["next_at"] is None
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
        for request in receiver.received:  # each attempt signed afresh, each verifies
            Webhook(hook["secret"]).verify(request.body, request.headers)

    async def test_timeouts_are_retried(
        self, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        async def slow_first(_request: Received, seen: int) -> int:
            if seen == 0:
                await asyncio.sleep(1.5)
            return 200

        receiver.behaviour = slow_first
        hook = await create_endpoint(private_org, receiver.url, ["webhook.test"])
        await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        async with run_dispatcher(webhook_timeout_seconds=0.3):
            await wait_until(lambda: _has_attempts(private_org, hook["id"], 2))
        first, second = await _attempts(private_org, hook["id"])
        assert first["status_code"] is None and "timed out" in first["error"]
        assert second["status_code"] == 200

    async def test_gives_up_after_the_schedule(
        self, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any, app: FastAPI
    ) -> None:
        async def always_fail(_request: Received, _seen: int) -> int:
            return 503

        receiver.behaviour = always_fail
        hook = await create_endpoint(private_org, receiver.url, ["webhook.test"])
        await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        tries = len(FAST_RETRIES) + 1
        async with run_dispatcher() as dispatcher:
            await wait_until(lambda: _has_attempts(private_org, hook["id"], tries))
            await asyncio.sleep(0.3)
        assert len(receiver.received) == tries
        assert dispatcher.failed == 1
        async with app.state.sessionmaker() as session:
            message = await session.scalar(select(WebhookMessage))
            assert message is not None and message.status == "failed"

    async def test_endpoint_failing_too_long_is_disabled(
        self, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        async def always_fail(_request: Received, _seen: int) -> int:
            return 500

        receiver.behaviour = always_fail
        hook = await create_endpoint(private_org, receiver.url, ["webhook.test"])
        await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        async with run_dispatcher(
            webhook_retry_seconds=(0.2,) * 20, webhook_disable_after_seconds=0.5
        ):
            await wait_until(lambda: _disabled(private_org, hook["id"]))
            seen = len(receiver.received)
            await asyncio.sleep(0.5)
        assert len(receiver.received) == seen  # nothing more posted once disabled
        shown = (await private_org.admin.get(f"/api/v1/webhooks/{hook['id']}")).json()
        assert shown["disabled_reason"] == "failing for too long"


async def _disabled(org: OrgClients, hook_id: int) -> bool:
    response = await org.admin.get(f"/api/v1/webhooks/{hook_id}")
    return response.json()["enabled"] is False


class TestMetrics:
    async def test_pending_delivered_and_failed(
        self,
        app: FastAPI,
        client: Any,
        private_org: OrgClients,
        receiver: Receiver,
        run_dispatcher: Any,
    ) -> None:
        async def always_fail(_request: Received, _seen: int) -> int:
            return 500

        failing = Receiver(always_fail)
        await failing.start()
        try:
            await create_endpoint(private_org, receiver.url, ["campaign.sent"])
            await create_endpoint(private_org, failing.url, ["campaign.sent"])
            before = await scrape_metrics(client)
            for n in range(3):
                await _emit(app, private_org, EventType.CAMPAIGN_SENT, {"campaign_id": n})
            pending = await scrape_metrics(client)
            assert metric_sample(pending, "amplify_webhook_events_pending") == 3  # in the outbox
            async with run_dispatcher():
                await wait_until(lambda: _pending_is(client, 0))
            after = await scrape_metrics(client)
        finally:
            await failing.stop()

        def grew(outcome: str) -> float:
            name = "amplify_webhook_events_total"
            return metric_sample(after, name, outcome=outcome) - metric_sample(
                before, name, outcome=outcome
            )

        tries = len(FAST_RETRIES) + 1
        assert grew("delivered") == 3
        assert grew("failed") == 3  # the failing endpoint's three messages, after every try
        assert grew("retried") == 3 * (tries - 1)
        assert len(failing.received) == 3 * tries and len(receiver.received) == 3


async def _pending_is(client: Any, count: int) -> bool:
    return metric_sample(await scrape_metrics(client), "amplify_webhook_events_pending") == count


class TestTargetsAtDelivery:
    async def test_private_address_refused_when_resolved(
        self, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        # Saved while private targets were allowed; the dispatcher of a deployment that
        # refuses them checks the address the name resolves to before connecting.
        url = f"http://localhost:{receiver.port}/hooks"
        hook = await create_endpoint(private_org, url, ["webhook.test"])
        await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        async with run_dispatcher(webhook_allow_private=False):
            await wait_until(lambda: _has_attempts(private_org, hook["id"], 1))
        assert receiver.received == []
        [attempt, *_] = await _attempts(private_org, hook["id"])
        assert attempt["status_code"] is None
        assert "refused" in attempt["error"]


def _clicks(count: int, start: int = 0) -> list[list[Any]]:
    return [
        ["visit", 1, 2, 3 + i % 5, "linkedin", f"2026-11-30T10:00:{i % 60:02d}Z"]
        for i in range(start, start + count)
    ]


class TestClickEvents:
    async def test_batches_coalesce_into_events_of_500_a_second_apart(
        self, app: FastAPI, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        hook = await create_endpoint(private_org, receiver.url, ["clicks.recorded"])
        await create_endpoint(private_org, receiver.url + "/other", ["campaign.sent"])
        org_id = private_org.organization_id
        async for session in session_scope(app.state.sessionmaker):
            await emit_events(
                session,
                [
                    Event(org_id, EventType.CLICKS_RECORDED, {"clicks": _clicks(n, 1000 * k)})
                    for k, n in enumerate((400, 300, 400))
                ],
            )
        async with run_dispatcher():
            await wait_until(lambda: len(receiver.received) == 3, timeout=10)
        sizes = []
        for request in receiver.received:
            payload = Webhook(hook["secret"]).verify(request.body, request.headers)
            assert payload["type"] == "clicks.recorded"
            sizes.append(len(payload["data"]["clicks"]))
        assert sizes == [500, 500, 100]
        first = json.loads(receiver.received[0].body)["data"]["clicks"][0]
        assert first == {
            "link_kind": "visit",
            "campaign_id": 1,
            "message_id": 2,
            "amplifier_id": 3,
            "network": "linkedin",
            "at": "2026-11-30T10:00:00Z",
        }
        async with app.state.sessionmaker() as session:
            times = (
                await session.scalars(
                    select(WebhookMessage.next_attempt_at).order_by(WebhookMessage.id)
                )
            ).all()
            endpoint = await session.get(WebhookEndpoint, hook["id"])
        assert [round((t - times[0]).total_seconds()) for t in times] == [0, 1, 2]
        assert endpoint is not None and endpoint.clicks_due_at is not None


class TestPurge:
    async def test_old_finished_messages_and_attempts_go(
        self, app: FastAPI, private_org: OrgClients, receiver: Receiver, run_dispatcher: Any
    ) -> None:
        hook = await create_endpoint(private_org, receiver.url, ["webhook.test"])
        for _ in range(2):
            await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")
        async with run_dispatcher():
            await wait_until(lambda: _has_attempts(private_org, hook["id"], 2))
        await private_org.admin.post(f"/api/v1/webhooks/{hook['id']}/test")  # in the outbox
        assert await purge_finished(app.state.sessionmaker, older_than=timedelta(days=1)) == 0
        assert await purge_finished(app.state.sessionmaker, older_than=timedelta(0)) == 2
        assert await _attempts(private_org, hook["id"]) == []
