"""DKIM signing: keys checked at start, and every digest the worker sends verifies with dkimpy's
own verifier against the published key (a DNS lookup stub: no network)."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.canonicalization import Relaxed
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.core.config import Settings
from app.sending.dkim import DkimConfigError, DkimKey, DkimSigner, relaxed_body
from tests.conftest import make_settings
from tests.factories import OrgClients
from tests.sending.conftest import make_campaign, send_campaign, wait_for_status
from tests.sending.smtp import SmtpServer

DOMAIN = "acme.test"
SIGNED = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]


def _write_key(path: Path, key: DkimKey) -> Path:
    path.write_bytes(key.pem())
    return path


@pytest.fixture(scope="session")
def dkim_keys(tmp_root: Path) -> dict[str, tuple[Path, DkimKey]]:
    keys = {alg: DkimKey.generate(alg) for alg in ("rsa", "ed25519")}  # type: ignore[arg-type]
    return {alg: (_write_key(tmp_root / f"dkim-{alg}.pem", key), key) for alg, key in keys.items()}


def dns_stub(selector: str, key: DkimKey) -> Callable[..., bytes | None]:
    record = key.dns_value().encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{selector}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def signature_tags(raw: bytes) -> dict[bytes, bytes]:
    headers, _ = dkim.rfc822_parse(raw)
    value = next(v for k, v in headers if k.lower() == b"dkim-signature")
    return dict(dkim.util.parse_tag_value(value))


class TestRelaxedBody:
    @given(
        st.lists(
            st.text(alphabet="aé \tx", max_size=12),
            max_size=8,
        ),
        st.integers(min_value=0, max_value=3),
    )
    def test_matches_dkimpy_byte_for_byte(self, lines: list[str], blank_tail: int) -> None:
        body = "\r\n".join(lines).encode() + b"\r\n" * blank_tail
        assert relaxed_body(body) == Relaxed.canonicalize_body(body)


class TestKeys:
    def test_short_rsa_keys_are_refused(self, tmp_path: Path) -> None:
        weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        with pytest.raises(DkimConfigError, match="1024 bits; at least 2048"):
            DkimKey.load(weak.private_bytes(*_pkcs8()))

    def test_other_key_types_are_refused(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(DkimConfigError, match="use RSA or Ed25519"):
            DkimKey.load(key.private_bytes(*_pkcs8()))

    def test_garbage_is_refused(self) -> None:
        with pytest.raises(DkimConfigError, match="not an unencrypted PEM private key"):
            DkimKey.load(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"dkim_selector": "s1"}, "needs both AMPLIFY_DKIM_SELECTOR"),
            ({"dkim_domain": DOMAIN}, "AMPLIFY_DKIM_DOMAIN is set without"),
            ({"dkim_selector": "bad selector", "dkim_private_key_file": "KEY"}, "DKIM selector"),
            (
                {"dkim_selector": "s1", "dkim_private_key_file": "KEY", "mail_from": "x@localhost"},
                "not a valid signing domain",
            ),
            (
                {"dkim_selector": "s1", "dkim_private_key_file": "missing.pem"},
                "cannot read the key file",
            ),
            (
                {"dkim_selector": "s1", "dkim_private_key_file": "/etc/hostname"},
                "not an unencrypted PEM private key",
            ),
        ],
    )
    def test_invalid_settings_refuse_to_load(
        self,
        database_url: str,
        tmp_root: Path,
        dkim_keys: dict[str, tuple[Path, DkimKey]],
        overrides: dict[str, str],
        message: str,
    ) -> None:
        values: dict[str, Any] = {"mail_from": f"Acme <news@{DOMAIN}>", **overrides}
        if values.get("dkim_private_key_file") == "KEY":
            values["dkim_private_key_file"] = str(dkim_keys["ed25519"][0])
        make_settings(  # the same key and selector are fine
            database_url,
            tmp_root,
            dkim_selector="s1",
            dkim_private_key_file=str(dkim_keys["ed25519"][0]),
            mail_from=values["mail_from"] if "localhost" not in values["mail_from"] else "a@b.c",
        )
        with pytest.raises(ValidationError, match=message):
            make_settings(database_url, tmp_root, **values)

    def test_the_service_does_not_start_with_a_bad_key(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        (tmp_path / "bad.pem").write_text("not a key\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")}
        env |= {
            "AMPLIFY_DATABASE_URL": settings.database_url,
            "AMPLIFY_DKIM_SELECTOR": "s1",
            "AMPLIFY_DKIM_PRIVATE_KEY_FILE": "bad.pem",
            "AMPLIFY_MAIL_FROM": f"news@{DOMAIN}",
        }
        done = subprocess.run(
            [sys.executable, "-m", "app", "worker"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert "Configuration error" in done.stderr
        assert "DKIM: bad.pem: not an unencrypted PEM private key" in done.stderr


def _pkcs8() -> tuple[Any, Any, Any]:
    return (
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class TestKeygen:
    @pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
    def test_writes_a_private_key_and_prints_its_record(
        self, tmp_path: Path, algorithm: str
    ) -> None:
        out = tmp_path / "keys" / "sel.pem"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLIFY_")}
        args = ["dkim", "keygen", "--selector", "2026a", "--algorithm", algorithm]
        done = subprocess.run(
            [sys.executable, "-m", "app", *args, "--out", str(out), "--domain", DOMAIN],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert out.stat().st_mode & 0o777 == 0o600
        key = DkimKey.load(out.read_bytes())
        assert key.algorithm == algorithm
        record = done.stdout.strip().splitlines()[-1]
        assert record.startswith(f"2026a._domainkey.{DOMAIN}. IN TXT ( ")
        joined = "".join(part for part in record.split('"')[1::2])
        assert joined == key.dns_value()
        assert f"k={algorithm}" in joined
        # The printed record verifies what the key signs.
        signer = DkimSigner(key=key, selector="2026a", domain=DOMAIN)
        signed = signer.sign(b"From: a@acme.test\r\nSubject: hi\r\n\r\nbody\r\n")
        lookup = dns_stub("2026a", key)
        assert dkim.verify(signed, dnsfunc=lookup)

        again = subprocess.run(
            [sys.executable, "-m", "app", *args, "--out", str(out)],
            env=env | {"AMPLIFY_MAIL_FROM": f"news@{DOMAIN}"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1 and "not overwriting" in again.stderr
        assert DkimKey.load(out.read_bytes()).dns_value() == key.dns_value()


class TestSignedDigests:
    @pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
    @pytest.mark.parametrize(
        ("name", "eight_bit_server", "encoding"),
        [
            ("Ada Lovelace", True, "8bit"),
            ("Jürgen Müller-Lüdenscheidt (Vertrieb) 🚀", True, "8bit"),
            ("Zoë", False, "quoted-printable"),
        ],
        ids=["plain", "non-ascii-name", "quoted-printable"],
    )
    async def test_every_digest_verifies(
        self,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        run_worker: Callable[..., Any],
        sessionmaker: Any,
        dkim_keys: dict[str, tuple[Path, DkimKey]],
        algorithm: str,
        name: str,
        eight_bit_server: bool,
        encoding: str,
    ) -> None:
        smtp_server.handler.eight_bit_mime = eight_bit_server
        key_file, key = dkim_keys[algorithm]
        response = await org_a.editor.post(
            "/api/v1/amplifiers",
            json={"email": "amp@example.com", "name": name, "networks": ["linkedin", "x"]},
        )
        assert response.status_code == 201, response.text
        campaign = await make_campaign(
            org_a,
            subject="Grüße – our launch, with a subject long enough to be folded over lines",
            messages=[
                {"text": "Ünïcode   spaced\ttext\n.leading dot", "url": "https://example.com/a"},
                {"text": "Second", "url": "https://example.com/b", "hashtags": ["launch"]},
            ],
        )
        await send_campaign(org_a, campaign["id"])
        async with run_worker(
            dkim_selector="2026a",
            dkim_private_key_file=str(key_file),
            mail_from=f"Acme Advocacy <advocacy@{DOMAIN}>",
        ):
            await wait_for_status(sessionmaker, campaign["id"])
        (received,) = smtp_server.handler.received
        parts = list(received.parsed().iter_parts())
        assert {p["Content-Transfer-Encoding"] for p in parts} == {encoding}
        assert dkim.verify(received.raw, dnsfunc=dns_stub("2026a", key))
        tags = signature_tags(received.raw)
        expected_a = b"ed25519-sha256" if algorithm == "ed25519" else b"rsa-sha256"
        assert (tags[b"a"], tags[b"c"], tags[b"d"], tags[b"s"]) == (
            expected_a,
            b"relaxed/relaxed",
            DOMAIN.encode(),
            b"2026a",
        )
        signed = [h.strip() for h in tags[b"h"].replace(b"\r\n", b"").split(b":")]
        assert set(SIGNED) <= set(signed)
        # Any change in transit breaks it: a body byte, or an added List-Unsubscribe.
        tampered = received.raw.replace(b"Second", b"Secomd")
        assert not dkim.verify(tampered, dnsfunc=dns_stub("2026a", key))
        head, _, body = received.raw.partition(b"\r\n\r\n")
        added = head + b"\r\nList-Unsubscribe: <https://evil.test/u>\r\n\r\n" + body
        assert not dkim.verify(added, dnsfunc=dns_stub("2026a", key))

    async def test_unsigned_without_settings(
        self,
        org_a: OrgClients,
        smtp_server: SmtpServer,
        run_worker: Callable[..., Any],
        sessionmaker: Any,
    ) -> None:
        await org_a.editor.post("/api/v1/amplifiers", json={"email": "amp@example.com"})
        campaign = await make_campaign(org_a)
        await send_campaign(org_a, campaign["id"])
        async with run_worker():
            await wait_for_status(sessionmaker, campaign["id"])
        (received,) = smtp_server.handler.received
        assert b"DKIM-Signature" not in received.raw
        assert received.sender == "advocacy@acme.test"
