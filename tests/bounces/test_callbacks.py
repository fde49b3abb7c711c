"""Provider callbacks over HTTP: the providers' documented payloads change the right amplifiers."""

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.bounces.conftest import amplifier_state, delivery_state, event_count
from tests.bounces.samples import Sent
from tests.conftest import HOOK_SECRET
from tests.factories import OrgClients

SECRET = {"secret": HOOK_SECRET}


def sns(message: dict[str, Any], *, message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"):
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:amplify-bounces",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-30T10:01:02.123Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkh",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-f3ecfb72.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=x",
    }


def ses_mail(sent: Sent) -> dict[str, Any]:
    return {
        "timestamp": "2026-11-30T10:00:58.000Z",
        "source": sent.return_path,
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/acme.test",
        "sendingAccountId": "123456789012",
        "messageId": "0102018c1f0e6a1b-5d6e7f80-1a2b-4c3d-9e8f-0a1b2c3d4e5f-000000",
        "destination": [sent.recipient],
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["Acme Advocacy <advocacy@acme.test>"],
            "to": [sent.recipient],
            "messageId": sent.message_id,
            "subject": "Your digest",
        },
    }


def ses_bounce(sent: Sent, bounce_type: str = "Permanent") -> dict[str, Any]:
    return sns(
        {
            "notificationType": "Bounce",
            "bounce": {
                "feedbackId": "0102018c1f0e6f2a-9b8c7d6e-aaaa-bbbb-cccc-ddddeeeeffff-000000",
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": sent.recipient,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": f"smtp; 550 5.1.1 <{sent.recipient}>: user unknown",
                    }
                ],
                "timestamp": "2026-11-30T10:01:00.000Z",
                "reportingMTA": "dsn; a7-12.smtp-out.eu-west-1.amazonses.com",
            },
            "mail": ses_mail(sent),
        }
    )


def ses_complaint(sent: Sent) -> dict[str, Any]:
    return sns(
        {
            "notificationType": "Complaint",
            "complaint": {
                "feedbackId": "0102018c1f0e7777-complaint-feedback-id-000000",
                "complaintSubType": None,
                "complainedRecipients": [{"emailAddress": sent.recipient}],
                "timestamp": "2026-11-30T10:05:00.000Z",
                "userAgent": "Yahoo!-Mail-Feedback/2.0",
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2026-11-30T10:00:59.000Z",
            },
            "mail": ses_mail(sent),
        },
        message_id="7d1e2f3a-complaint-notification",
    )


def basic(password: str, user: str = "ses") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def post(
    client: httpx.AsyncClient, provider: str, body: Any, **kwargs: Any
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    # SNS posts JSON as text/plain: the content type is not relied on.
    headers = {"Content-Type": "text/plain; charset=UTF-8", **kwargs.pop("headers", {})}
    return await client.post(
        f"/hooks/bounces/{provider}", content=content, headers=headers, **kwargs
    )


class TestSes:
    async def test_permanent_bounce_via_sns_is_recorded_once(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        bounced, kept = await send_digests(org_a, 2)
        body = ses_bounce(bounced)
        response = await post(client, "ses", body, params=SECRET)
        assert response.status_code == 200, response.text
        assert response.json()["recorded"] == 1
        assert await amplifier_state(sessionmaker, bounced.recipient) == ("bounced", "hard_bounce")
        assert (await delivery_state(sessionmaker, bounced.message_id))[0] == "bounced"
        assert await amplifier_state(sessionmaker, kept.recipient) == ("active", None)
        again = await post(client, "ses", body, params=SECRET)
        assert again.json() == {
            "recorded": 0,
            "duplicates": 1,
            "unmapped": 0,
            "subscription_confirmed": False,
        }
        assert await event_count(sessionmaker) == 1

    async def test_complaint_with_basic_auth(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        (sent,) = await send_digests(org_a, 1)
        response = await post(client, "ses", ses_complaint(sent), headers=basic(HOOK_SECRET))
        assert response.status_code == 200, response.text
        assert await amplifier_state(sessionmaker, sent.recipient) == ("unsubscribed", "complaint")

    async def test_raw_message_delivery_without_the_sns_envelope(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        (sent,) = await send_digests(org_a, 1)
        event = json.loads(ses_bounce(sent)["Message"])
        response = await post(client, "ses", event, params=SECRET)
        assert response.status_code == 200, response.text
        assert response.json()["recorded"] == 1
        assert await amplifier_state(sessionmaker, sent.recipient) == ("bounced", "hard_bounce")

    async def test_transient_bounce_is_soft(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        (sent,) = await send_digests(org_a, 1)
        response = await post(client, "ses", ses_bounce(sent, "Transient"), params=SECRET)
        assert response.json()["recorded"] == 1
        assert await amplifier_state(sessionmaker, sent.recipient) == ("active", None)


@pytest.fixture
async def fake_sns(app: FastAPI) -> AsyncIterator[list[str]]:
    """Amazon SNS's confirmation endpoint, served in process: no request leaves the machine."""
    fetched: list[str] = []

    async def confirm(request: Request) -> PlainTextResponse:
        fetched.append(str(request.url))
        return PlainTextResponse("<ConfirmSubscriptionResponse/>")

    sns_app = Starlette(routes=[Route("/", confirm)])
    original = app.state.outbound_http
    app.state.outbound_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=sns_app))
    try:
        yield fetched
    finally:
        await app.state.outbound_http.aclose()
        app.state.outbound_http = original


def subscription(url: str) -> dict[str, Any]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a7",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:amplify-bounces",
        "Message": "You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.",
        "SubscribeURL": url,
        "Timestamp": "2026-11-30T09:00:00.000Z",
    }


class TestSnsSubscription:
    async def test_confirmation_fetches_the_subscribe_url(
        self, client: httpx.AsyncClient, fake_sns: list[str]
    ) -> None:
        url = (
            "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
            "&TopicArn=arn:aws:sns:eu-west-1:123456789012:amplify-bounces&Token=2336412f"
        )
        response = await post(client, "ses", subscription(url), params=SECRET)
        assert response.status_code == 200, response.text
        assert response.json()["subscription_confirmed"] is True
        assert fetched_paths(fake_sns) == [url]

    @pytest.mark.parametrize(
        "url",
        [
            "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "https://127.0.0.1/?Action=ConfirmSubscription",
            "https://sns.eu-west-1.amazonaws.com.evil.example/confirm",
            "https://evil.example/?host=sns.eu-west-1.amazonaws.com",
        ],
    )
    async def test_only_amazon_sns_urls_are_fetched(
        self, client: httpx.AsyncClient, fake_sns: list[str], url: str
    ) -> None:
        response = await post(client, "ses", subscription(url), params=SECRET)
        assert response.status_code == 422
        assert fake_sns == []


def fetched_paths(fetched: list[str]) -> list[str]:
    return [url.replace("%3A", ":") for url in fetched]


class TestPostmark:
    async def test_hard_bounce_and_spam_complaint(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        bounced, complained = await send_digests(org_a, 2)
        hard = {
            "RecordType": "Bounce",
            "ID": 4323372036854775807,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Tag": "",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "ServerID": 23,
            "MessageStream": "outbound",
            "Description": "The server was unable to deliver your message (ex: unknown user).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Email": bounced.recipient,
            "From": "advocacy@acme.test",
            "BouncedAt": "2026-11-30T10:03:00Z",
            "DumpAvailable": True,
            "Inactive": True,
            "CanActivate": True,
            "Subject": "Your digest",
        }
        response = await post(client, "postmark", hard, headers=basic(HOOK_SECRET, "postmark"))
        assert response.status_code == 200, response.text
        assert response.json()["recorded"] == 1
        assert await amplifier_state(sessionmaker, bounced.recipient) == ("bounced", "hard_bounce")
        assert (await delivery_state(sessionmaker, bounced.message_id))[0] == "bounced"
        spam = {
            **hard,
            "RecordType": "SpamComplaint",
            "ID": 4323372036854775808,
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Email": complained.recipient,
        }
        response = await post(client, "postmark", spam, params=SECRET)
        assert response.json()["recorded"] == 1
        assert await amplifier_state(sessionmaker, complained.recipient) == (
            "unsubscribed",
            "complaint",
        )


class TestSendGrid:
    async def test_an_event_batch(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        bounced, complained, delivered = await send_digests(org_a, 3)

        def event(sent: Sent, name: str, **fields: Any) -> dict[str, Any]:
            return {
                "email": sent.recipient,
                "timestamp": 1796033000,
                "smtp-id": sent.message_id,
                "event": name,
                "category": [],
                "sg_event_id": f"sg-{name}-{sent.recipient}",
                "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
                **fields,
            }

        batch = [
            event(delivered, "delivered", response="250 OK"),
            event(bounced, "bounce", type="bounce", status="5.1.1", reason="550 5.1.1 unknown"),
            event(complained, "spamreport"),
            event(delivered, "open", useragent="Mozilla/5.0"),
        ]
        response = await post(client, "sendgrid", batch, params=SECRET)
        assert response.status_code == 200, response.text
        assert response.json()["recorded"] == 2
        assert await amplifier_state(sessionmaker, bounced.recipient) == ("bounced", "hard_bounce")
        assert await amplifier_state(sessionmaker, complained.recipient) == (
            "unsubscribed",
            "complaint",
        )
        assert await amplifier_state(sessionmaker, delivered.recipient) == ("active", None)
        again = await post(client, "sendgrid", batch, params=SECRET)
        assert again.json()["duplicates"] == 2


class TestMailgun:
    async def test_permanent_failure_and_complaint(
        self, org_a: OrgClients, client: httpx.AsyncClient, send_digests, sessionmaker
    ) -> None:
        failed, temporary, complained = await send_digests(org_a, 3)

        def body(sent: Sent, event: str, **fields: Any) -> dict[str, Any]:
            return {
                "signature": {
                    "timestamp": "1796033000",
                    "token": "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
                    "signature": "d2271d12299f6592d9d44cd9d250f0704e4674c30d79d07c47a66f95ce71cf55",
                },
                "event-data": {
                    "id": f"CPgfbmQMTCKtHW6uIWtuVe-{event}-{sent.recipient}",
                    "timestamp": 1796033000.12,
                    "event": event,
                    "recipient": sent.recipient,
                    "message": {"headers": {"message-id": sent.message_id.strip("<>")}},
                    **fields,
                },
            }

        status = {"code": 550, "description": "550 5.1.1 No such user", "message": ""}
        responses = [
            await post(
                client,
                "mailgun",
                body(failed, "failed", severity="permanent", **{"delivery-status": status}),
                params=SECRET,
            ),
            await post(
                client, "mailgun", body(temporary, "failed", severity="temporary"), params=SECRET
            ),
            await post(client, "mailgun", body(complained, "complained"), params=SECRET),
            await post(client, "mailgun", body(failed, "delivered"), params=SECRET),
        ]
        assert [r.json()["recorded"] for r in responses] == [1, 1, 1, 0]
        assert await amplifier_state(sessionmaker, failed.recipient) == ("bounced", "hard_bounce")
        assert await amplifier_state(sessionmaker, temporary.recipient) == ("active", None)
        assert await amplifier_state(sessionmaker, complained.recipient) == (
            "unsubscribed",
            "complaint",
        )


class TestRefusals:
    @pytest.mark.parametrize(
        "auth",
        [
            {},
            {"params": {"secret": "wrong"}},
            {"headers": basic("wrong")},
            {"headers": {"Authorization": "Basic !!!not-base64"}},
            {"headers": {"Authorization": f"Bearer {HOOK_SECRET}"}},
        ],
        ids=["none", "wrong-query", "wrong-basic", "bad-basic", "bearer"],
    )
    async def test_without_the_secret_401(
        self, client: httpx.AsyncClient, auth: dict[str, Any]
    ) -> None:
        response = await post(client, "sendgrid", [], **auth)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")

    @pytest.mark.parametrize(
        ("provider", "body", "status"),
        [
            ("ses", b"{not json", 400),
            ("ses", b"\xff\xfe", 400),
            ("ses", {"Type": "Notification", "Message": "not json"}, 422),
            ("ses", {"Type": "Notification", "Message": 5}, 422),
            ("ses", {"Type": "SubscriptionConfirmation"}, 422),
            ("postmark", [1, 2], 422),
            ("sendgrid", {"event": "bounce"}, 422),
            ("sendgrid", [5], 422),
            ("mailgun", {"event-data": "x"}, 422),
            ("mandrill", [], 422),
        ],
    )
    async def test_bad_bodies_are_4xx(
        self, client: httpx.AsyncClient, provider: str, body: Any, status: int
    ) -> None:
        response = await post(client, provider, body, params=SECRET)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_events_for_mail_we_never_sent_are_unmapped(
        self, client: httpx.AsyncClient, sessionmaker
    ) -> None:
        stranger = Sent("", "<nobody@example.org>", "nobody@example.org", "x@example.org")
        response = await post(client, "ses", ses_bounce(stranger), params=SECRET)
        assert response.json()["unmapped"] == 1
        assert await event_count(sessionmaker) == 0


def test_callbacks_are_off_without_a_secret(settings: Any) -> None:
    from app.bounces.router import _authenticate
    from app.core.errors import NotFound

    off = settings.model_copy(update={"bounce_webhook_secret": None})
    request = Request({"type": "http", "query_string": b"", "headers": []})
    with pytest.raises(NotFound, match="AMPLIFY_BOUNCE_WEBHOOK_SECRET"):
        _authenticate(request, off)
