"""The SpamAssassin gate: real digests of a send, DKIM-signed, score below 1.0 with the stock
rules (`spamassassin -L -t`: local tests only, no network)."""

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.sending.dkim import DkimKey
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, send_campaign, wait_for_status
from tests.sending.smtp import SmtpServer

MAX_SCORE = 1.0
_STATUS = re.compile(
    r"^X-Spam-Status: \w+, score=(-?[\d.]+) .*?tests=(.*?)(?:\n\S|\Z)", re.S | re.M
)


def _spamassassin() -> str:
    found = shutil.which("spamassassin")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the SpamAssassin gate: .ci/run installs spamassassin")
        pytest.skip("spamassassin is not installed (apt-get install spamassassin); CI runs this")
    return found


def score(binary: str, raw: bytes) -> tuple[float, str]:
    done = subprocess.run(
        [binary, "-L", "-t"], input=raw, capture_output=True, timeout=120, check=True
    )
    match = _STATUS.search(done.stdout.decode("utf-8", errors="replace"))
    assert match is not None, done.stdout[-2000:]
    return float(match.group(1)), " ".join(match.group(2).split())


async def test_digests_score_below_one(
    org_a: OrgClients,
    smtp_server: SmtpServer,
    run_worker: Callable[..., Any],
    sessionmaker: Any,
    tmp_path: Path,
) -> None:
    binary = _spamassassin()
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(DkimKey.generate("rsa").pem())
    for email, name in [("maria@example.com", "María José"), ("tom@example.org", "Tom Baker")]:
        response = await org_a.editor.post(
            "/api/v1/amplifiers",
            json={"email": email, "name": name, "networks": ["linkedin", "x", "facebook"]},
        )
        assert response.status_code == 201, response.text
    campaign = await make_campaign(
        org_a,
        subject="Our new sustainability report is out",
        intro="Thanks for helping us spread the word. Three posts are ready for you this week.",
        networks=["linkedin", "x", "facebook"],
        messages=[
            {
                "text": "We cut our emissions by a third since 2020. Read how in our new report.",
                "url": "https://www.example.com/reports/sustainability-2026",
                "hashtags": ["sustainability"],
            },
            {
                "text": "Meet the team behind our new recycling programme.",
                "url": "https://www.example.com/blog/recycling-team",
            },
        ],
    )
    await send_campaign(org_a, campaign["id"])
    async with run_worker(
        dkim_selector="mail2026",
        dkim_private_key_file=str(key_file),
        mail_from="Acme Advocacy <advocacy@acme.example>",
        bounce_address="bounces@acme.example",
    ):
        await wait_for_status(sessionmaker, campaign["id"])
    digests = [r.raw for r in smtp_server.handler.received]
    assert len(digests) == 2 and all(b"DKIM-Signature:" in raw for raw in digests)
    results = await asyncio.gather(*(asyncio.to_thread(score, binary, raw) for raw in digests))
    for value, rules in results:
        assert value < MAX_SCORE, f"SpamAssassin scored a digest {value}: {rules}"
