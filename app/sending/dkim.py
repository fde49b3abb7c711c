"""DKIM signing (RFC 6376, RSA-SHA256 and Ed25519-SHA256 per RFC 8463), relaxed/relaxed.

The send engine hands finished message bytes to `DkimSigner.sign` just before the transport sends
them. dkimpy provides the DKIM format (header folding, the general header selection, and, in the
tests, the verifier); the key is loaded and checked once, at start, with `cryptography`. Per mail
the body is canonicalized and hashed once, only the header block is parsed, and the signature is
one OpenSSL (RSA) or libsodium (Ed25519) call: `dkim.sign` re-parses the PEM and exponentiates
in Python on every mail, about 35 times the cost here.
"""

import base64
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dkim
import nacl.signing
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from dkim.canonicalization import CanonicalizationPolicy, correct_empty_body, strip_trailing_lines

if TYPE_CHECKING:
    from app.core.config import Settings

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)
# Signed once more than they occur: a header of this name added in transit breaks the signature
# instead of being shown to the reader as if it were signed (RFC 6376 §8.15).
OVERSIGNED: tuple[bytes, ...] = (b"from", b"subject", b"list-unsubscribe")
MIN_RSA_BITS = 2048
_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_SPACE_RUNS = re.compile(rb"  +")
_B_LINE = 70  # base64 characters per folded line of b=
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$")

Algorithm = Literal["rsa", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DkimConfigError(ValueError):
    """The DKIM settings or key cannot sign: the service must not start with them."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    private_key: PrivateKey

    @property
    def algorithm(self) -> Algorithm:
        return "ed25519" if isinstance(self.private_key, ed25519.Ed25519PrivateKey) else "rsa"

    def dns_value(self) -> str:
        """The TXT record value to publish at `<selector>._domainkey.<domain>`."""
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return f"v=DKIM1; k={self.algorithm}; p={base64.b64encode(raw).decode()}"

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def generate(cls, algorithm: Algorithm) -> "DkimKey":
        if algorithm == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS))

    @classmethod
    def load(cls, pem: bytes) -> "DkimKey":
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            reason = str(exc).split(". See ")[0]  # drop the library's FAQ link
            raise DkimConfigError(f"not an unencrypted PEM private key ({reason})") from None
        except Exception as exc:  # the Rust bindings raise their own types for some inputs
            raise DkimConfigError(f"not a usable PEM private key ({exc})") from None
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise DkimConfigError(
                    f"the RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed"
                )
            return cls(key)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return cls(key)
        raise DkimConfigError(f"{type(key).__name__} keys cannot sign DKIM; use RSA or Ed25519")


def txt_record(key: DkimKey, *, selector: str, domain: str) -> str:
    """A zone-file line; the value is split into quoted strings of at most 255 characters as
    DNS requires (resolvers join them back)."""
    value = key.dns_value()
    chunks = " ".join(f'"{value[i : i + 250]}"' for i in range(0, len(value), 250))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4, byte for byte what dkimpy's Relaxed.canonicalize_body returns, several
    times faster: dkimpy's `[\\t ]+` visits every space of the body, while a digest has a
    handful of runs to compress, which a pattern starting with two literal spaces finds by a
    fast substring search."""
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    body = _SPACE_RUNS.sub(b" ", body)
    if b" \r\n" in body:
        body = body.replace(b" \r\n", b"\r\n")
    return bytes(correct_empty_body(strip_trailing_lines(body)))


def check_selector(selector: str) -> str:
    if not _SELECTOR.fullmatch(selector):
        raise DkimConfigError(f"{selector!r} is not a valid DKIM selector (DNS labels)")
    return selector


def check_domain(domain: str) -> str:
    if not _DOMAIN.fullmatch(domain):
        raise DkimConfigError(f"{domain!r} is not a valid signing domain")
    return domain.lower()


class DkimSigner:
    """Turns finished message bytes (CRLF line ends) into signed message bytes."""

    def __init__(self, *, key: DkimKey, selector: str, domain: str) -> None:
        self.key = key
        self.selector = check_selector(selector)
        self.domain = check_domain(domain)
        self._algorithm = b"ed25519-sha256" if key.algorithm == "ed25519" else b"rsa-sha256"
        self._sign = self._signing_function(key.private_key)
        self._h = b" : ".join((*SIGNED_HEADERS, *OVERSIGNED))
        self._include = (*SIGNED_HEADERS, *OVERSIGNED)
        self._signed_names = frozenset(SIGNED_HEADERS)
        self._fixed = [
            (b"v", b"1"),
            (b"a", self._algorithm),
            (b"c", b"relaxed/relaxed"),
            (b"d", self.domain.encode()),
            (b"s", self.selector.encode()),
        ]

    @classmethod
    def from_file(cls, path: Path, *, selector: str, domain: str) -> "DkimSigner":
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise DkimConfigError(f"cannot read the key file {path}: {exc.strerror}") from None
        try:
            key = DkimKey.load(pem)
        except DkimConfigError as exc:
            raise DkimConfigError(f"{path}: {exc}") from None
        return cls(key=key, selector=selector, domain=domain)

    @classmethod
    def from_settings(cls, settings: "Settings") -> "DkimSigner | None":
        """The signer the settings ask for (None: signing is off). The domain defaults to the
        AMPLIFY_MAIL_FROM domain, which DMARC alignment wants anyway."""
        if settings.dkim_selector is None or settings.dkim_private_key_file is None:
            return None
        from app.sending.mime import domain_of

        return cls.from_file(
            settings.dkim_private_key_file,
            selector=settings.dkim_selector,
            domain=settings.dkim_domain or domain_of(settings.mail_from),
        )

    def sign(self, message: bytes, *, now: float | None = None) -> bytes:
        head, separator, body = message.partition(b"\r\n\r\n")
        body_hash = hashlib.sha256(relaxed_body(body)).digest()
        fields = [
            *self._fixed,
            (b"t", str(int(now if now is not None else time.time())).encode()),
            (b"h", self._h),
            (b"bh", base64.b64encode(body_hash)),
            # A placeholder long enough that b= starts on its own folded line, so filling it
            # in later does not move the white space of the tags before it (as dkimpy does).
            (b"b", b"0" * 60),
        ]
        folded = dkim.fold(b"; ".join(b"=".join(f) for f in fields), namelen=len(b"DKIM-Signature"))
        # The placeholder sits alone on the last line: cutting it leaves the header as it is
        # hashed (b= empty), and the signature goes in its place, folded the same way.
        unsigned = folded[: folded.rindex(b"b=") + 2]
        header_hash = self._header_hash(head, b" ".join(unsigned.split()), fields)
        signature = base64.b64encode(self._sign(header_hash))
        value = unsigned + b"\r\n ".join(
            signature[i : i + _B_LINE] for i in range(0, len(signature), _B_LINE)
        )
        signed: bytes = b"DKIM-Signature: " + value + b"\r\n" + head + separator + body
        return signed

    def _header_hash(
        self, head: bytes, signature_value: bytes, fields: list[tuple[bytes, bytes]]
    ) -> bytes:
        """SHA-256 over the signed headers and the signature header without b= (relaxed). A
        builder's digest has each signed header once, so the h= order is the hash order and an
        over-signed name adds nothing; anything else goes through dkimpy's general selection."""
        canonical = self._canonical_signed_headers(head)
        names = [name for name, _ in canonical]
        if len(set(names)) != len(names):
            hasher = hashlib.sha256()
            dkim.hash_headers(
                hasher,
                _RELAXED,
                canonical,
                self._include,
                (b"DKIM-Signature", b" " + signature_value),
                dict(fields),
            )
            return hasher.digest()
        present = dict(canonical)
        parts = [name + b":" + present[name] for name in SIGNED_HEADERS if name in present]
        parts.append(b"dkim-signature:" + signature_value)
        return hashlib.sha256(b"".join(parts)).digest()

    def _canonical_signed_headers(self, head: bytes) -> list[tuple[bytes, bytes]]:
        """Relaxed header canonicalization (RFC 6376 §3.4.2) of the headers we sign, in order:
        name lower-cased, value unfolded with white space runs as one space, trimmed. The
        builder's header values hold no control characters, so `split()` is exact here."""
        fields: list[tuple[bytes, bytes]] = []
        for line in head.split(b"\r\n"):
            if line[:1] in (b" ", b"\t"):
                if fields and fields[-1][0] in self._signed_names:
                    name, value = fields[-1]
                    fields[-1] = (name, value + b" " + line)
                continue
            name, _, value = line.partition(b":")
            fields.append((name.rstrip().lower(), value))
        return [
            (name, b" ".join(value.split()) + b"\r\n")
            for name, value in fields
            if name in self._signed_names
        ]

    @staticmethod
    def _signing_function(key: PrivateKey) -> Callable[[bytes], bytes]:
        """Signs a header hash. Ed25519 (RFC 8463: pure Ed25519 over the SHA-256 digest) goes
        through libsodium, a third cheaper per call here than OpenSSL; signatures are
        deterministic, so both give the same bytes."""
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            sodium = nacl.signing.SigningKey(seed)
            return lambda digest: sodium.sign(digest).signature
        return lambda digest: key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
