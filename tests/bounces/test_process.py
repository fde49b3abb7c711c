"""`amplify bounces` as an operator runs it: its own process, a real socket, SIGTERM to stop."""

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from app.core.config import Settings
from tests.bounces import samples
from tests.bounces.conftest import BOUNCE_ADDRESS, amplifier_state
from tests.factories import OrgClients
from tests.sending.smtp import free_port


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
async def test_the_receiver_process_records_a_bounce(
    settings: Settings,
    tmp_path: Path,
    org_a: OrgClients,
    send_digests: Callable[..., Any],
    sessionmaker: Any,
) -> None:
    (sent,) = await send_digests(org_a, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")}
    env |= {
        "AMPLIFY_DATABASE_URL": settings.database_url,
        "AMPLIFY_SECRET_KEY": settings.signing_key(),
        "AMPLIFY_BOUNCE_ADDRESS": BOUNCE_ADDRESS,
        "AMPLIFY_VAR_DIR": str(tmp_path / "var"),
    }
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "bounces",
        "--port",
        str(port),
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5)
                await smtp.connect()
                break
            except (OSError, aiosmtplib.SMTPException):
                assert process.returncode is None, "amplify bounces exited early"
                assert time.monotonic() < deadline, "amplify bounces did not listen in time"
                await asyncio.sleep(0.1)
        response = await smtp.sendmail("", [sent.return_path], samples.postfix_user_unknown(sent))
        assert response[1].startswith("OK")
        await smtp.quit()
        assert await amplifier_state(sessionmaker, sent.recipient) == ("bounced", "hard_bounce")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), timeout=20)
    stderr = (await process.stderr.read()).decode() if process.stderr else ""
    assert returncode == 0, stderr
    assert f"Bounce receiver on 127.0.0.1:{port}" in stderr
