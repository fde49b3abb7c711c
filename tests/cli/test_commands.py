"""The `amplify` commands as an operator runs them: real processes, sockets and SMTP."""

import asyncio
import os
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from app.core.config import Settings
from tests.sending.smtp import SmtpServer, free_port


def _env(settings: Settings, tmp: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AMPLIFY_")}
    env.update(
        {
            "AMPLIFY_DATABASE_URL": settings.database_url,
            "AMPLIFY_SECRET_KEY": settings.signing_key(),
            "AMPLIFY_VAR_DIR": str(tmp / "var"),
            **extra,
        }
    )
    return env


def _amplify(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class TestKeysCreate:
    def test_prints_the_key_alone_on_the_last_line(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        result = _amplify(
            "keys",
            "create",
            "--org",
            "CLI Org",
            "--role",
            "viewer",
            "--name",
            "wall",
            env=_env(settings, tmp_path),
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        last = result.stdout.strip().splitlines()[-1]
        assert last.startswith("amp_") and " " not in last

    def test_rejects_a_bad_role_and_a_bad_setting(self, settings: Settings, tmp_path: Path) -> None:
        env = _env(settings, tmp_path)
        assert (
            _amplify(
                "keys", "create", "--org", "X", "--role", "owner", env=env, cwd=tmp_path
            ).returncode
            != 0
        )
        env["AMPLIFY_SMTP_TLS"] = "sometimes"
        result = _amplify("migrate", env=env, cwd=tmp_path)
        assert result.returncode == 2
        # Named as it is set, with what was given, and no validation-library noise.
        assert "AMPLIFY_SMTP_TLS:" in result.stderr and "'sometimes'" in result.stderr
        assert "pydantic" not in result.stderr and "Traceback" not in result.stderr


class TestMailsink:
    def test_stores_each_mail_as_eml(self, tmp_path: Path) -> None:
        port = free_port()
        outbox = tmp_path / "outbox"
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "mailsink", "--port", str(port), "--dir", str(outbox)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    client = smtplib.SMTP("127.0.0.1", port, timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            message = EmailMessage()
            message["From"], message["To"], message["Subject"] = "a@x.test", "b@y.test", "Hi"
            message.set_content("Hello")
            client.send_message(message)
            client.quit()
        finally:
            process.terminate()
            process.wait(timeout=10)
        files = list(outbox.glob("*.eml"))
        assert len(files) == 1 and b"Subject: Hi" in files[0].read_bytes()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
class TestServe:
    async def test_serve_sends_digests_end_to_end(
        self, settings: Settings, tmp_path: Path, smtp_server: SmtpServer
    ) -> None:
        env = _env(
            settings,
            tmp_path,
            AMPLIFY_SMTP_PORT=str(smtp_server.port),
            AMPLIFY_WORKER_POLL_SECONDS="0.1",
            AMPLIFY_PUBLIC_URL="https://amplify.test",
        )
        key = _amplify("keys", "create", "--org", "Serve Org", env=env, cwd=tmp_path)
        assert key.returncode == 0, key.stderr
        token = key.stdout.strip().splitlines()[-1]
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "serve",
            "--port",
            str(port),
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
                for _ in range(150):
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                imported = await http.post(
                    "/api/v1/amplifiers/import",
                    content="email,name\nada@example.com,Ada\ngrace@example.com,Grace\n",
                    headers={"content-type": "text/csv"},
                )
                assert imported.json()["created"] == 2
                campaign = await http.post(
                    "/api/v1/campaigns",
                    json={
                        "name": "Serve",
                        "subject": "Share this",
                        "networks": ["linkedin"],
                        "messages": [{"text": "Hi", "url": "https://example.com"}],
                    },
                )
                sent = await http.post(f"/api/v1/campaigns/{campaign.json()['id']}/send")
                assert sent.status_code == 202
                for _ in range(200):
                    status = (await http.get(f"/api/v1/campaigns/{campaign.json()['id']}")).json()
                    if status["status"] == "sent":
                        break
                    await asyncio.sleep(0.1)
                assert status["status"] == "sent"
        finally:
            process.terminate()
            # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status shows it.
            assert await asyncio.wait_for(process.wait(), timeout=20) in (0, -signal.SIGTERM)
        assert sorted(smtp_server.handler.recipients()) == ["ada@example.com", "grace@example.com"]
