"""A Docker registry token server (docker/auth-token.md, auth-jwt.md, auth-scope.md) for token-auth tests.

GET /token?service=…&scope=…[&scope=…] with optional Basic credentials answers a JWT granting the
intersection of the requested actions and the user's permissions (never an error for missing rights: the
registry decides). Tokens are ES256-signed by a cert from a test CA, whose cert is the `rootcertbundle`.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .server import BackgroundServer, QuietHandler
from .tls import KeyPair, issue_cert, make_ca

ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})
# Users without an entry in `permissions` may do anything anywhere.
FULL_ACCESS: Mapping[str, frozenset[str]] = {"*": ALL_ACTIONS}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(key: ec.EllipticCurvePublicKey) -> str:
    """The `kid` distribution 2.8 derives from a trusted cert's public key (libtrust fingerprint)."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(digest[i : i + 4] for i in range(0, 48, 4))


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope:
        # A name may carry a port (`host:5000/repo`), so split off the type and the actions at the ends.
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            raise ValueError(f"bad scope {text!r}")
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


@dataclass
class TokenServer(BackgroundServer):
    """Token endpoint at `.realm`. `users` maps user -> password; `permissions` maps user -> {repo glob:
    actions} (user "" is anonymous, which has no rights unless listed). Counters: `requests_by_scope[scope]`,
    `requests_by_user[user]`, `failures` (bad credentials)."""

    directory: Path
    users: Mapping[str, str]
    permissions: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    service: str = "ocipush-test-registry"
    issuer: str = "ocipush-test-token-issuer"
    expires_in: int = 300
    key_header: Literal["x5c", "kid"] = "x5c"

    def __post_init__(self) -> None:
        super().__init__(_TokenHandler)
        self.ca: KeyPair = make_ca(self.directory, "token-ca")
        self.signer: KeyPair = issue_cert(self.ca, self.directory, "token-signer", hosts=("localhost",))
        self.realm = f"{self.url}/token"
        self.requests_by_scope: Counter[str] = Counter()
        self.requests_by_user: Counter[str] = Counter()
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def rootcertbundle(self) -> Path:
        return self.ca.cert_path

    def grant(self, user: str, scopes: list[Scope]) -> list[dict[str, Any]]:
        rules = FULL_ACCESS if user and user not in self.permissions else self.permissions.get(user, {})
        access = []
        for scope in scopes:
            allowed: set[str] = set()
            for pattern, actions in rules.items():
                if fnmatch.fnmatchcase(scope.name, pattern):
                    allowed |= actions
            granted = [a for a in scope.actions if a in allowed or "*" in allowed]
            access.append({"type": scope.type, "name": scope.name, "actions": granted})
        return access

    def sign(self, user: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header: dict[str, Any] = {"typ": "JWT", "alg": "ES256"}
        if self.key_header == "x5c":
            header["x5c"] = [
                base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                for c in (self.signer.cert, self.ca.cert)
            ]
            key = self.signer.key
        else:
            # distribution 2.8 trusts a `kid` only for keys of certs in the bundle: sign with the CA key.
            header["kid"] = libtrust_key_id(self.ca.key.public_key())
            key = self.ca.key
        claims = {
            "iss": self.issuer,
            "sub": user,
            "aud": self.service,
            "exp": now + self.expires_in,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(12),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        # JWS ES256 wants the raw 64-byte r||s, not DER.
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def record(self, user: str | None, scopes: list[str]) -> None:
        with self._lock:
            if user is None:
                self.failures += 1
                return
            self.requests_by_user[user] += 1
            for scope in scopes or [""]:
                self.requests_by_scope[scope] += 1


class _TokenHandler(QuietHandler):
    def do_GET(self) -> None:
        owner: TokenServer = self.server.owner  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        if url.path != "/token":
            self._json(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
            return
        query = parse_qs(url.query)
        service = query.get("service", [owner.service])[0]
        if service != owner.service:
            self._json(400, {"errors": [{"code": "INVALID_SERVICE", "message": service}]})
            return
        raw_scopes = [s for param in query.get("scope", []) for s in param.split(" ") if s]
        try:
            scopes = [Scope.parse(s) for s in raw_scopes]
        except ValueError as err:
            self._json(400, {"errors": [{"code": "INVALID_SCOPE", "message": str(err)}]})
            return
        user = self._user(owner)
        owner.record(user, raw_scopes)
        if user is None:
            self._json(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
            return
        token = owner.sign(user, owner.grant(user, scopes))
        self._json(200, {"token": token, "access_token": token, "expires_in": owner.expires_in})

    def _user(self, owner: TokenServer) -> str | None:
        """The authenticated user, "" for anonymous, None for wrong credentials."""
        header = self.headers.get("Authorization", "")
        if not header:
            return ""
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user if owner.users.get(user) == password else None

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="ocipush-test-token"')
        self.end_headers()
        self.wfile.write(data)
