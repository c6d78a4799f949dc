"""The reps' sessions: a signed cookie naming the key by id, and a CSRF token in it.

The cookie (``leadscore_session``) holds the key's id (a digest prefix, never the key), the
rep it names (if any), a random per-session CSRF token and an expiry, as base64url JSON, then
an HMAC-SHA256 of that text. Nothing is kept server-side, so any worker can read any worker's
cookie as long as they sign with the same key (:func:`signing_key`). Each use checks the
signature and the expiry, and that the key is still in the key ring with the `rep` scope and
the same owner: removing a key from the configuration ends its sessions.

Signed with :mod:`hmac` from the standard library rather than itsdangerous (what Starlette's
sessions use): the format is a dozen lines, the expiry lives inside the signed text, and
leadscore gains no dependency that is only installed today because MLflow's Flask brings it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from leadscore.serving.auth import ApiKey, KeyRing
from leadscore.serving.settings import Settings

COOKIE = "leadscore_session"
COOKIE_PATH = "/app"
LIFETIME = timedelta(hours=12)
REP_SCOPE = "rep"
_CONTEXT = b"leadscore pages session v1"  # a signing key of its own, whatever it derives from
_MAX_COOKIE = 1024  # ours are about 200 characters; anything longer is not ours


@dataclass(frozen=True)
class Session:
    """A signed-in rep: the key's id, the rep it names (None: every rep's leads), the CSRF
    token of the session's forms and when it ends (Unix seconds)."""

    key_id: str
    owner: str | None
    csrf: str
    expires: int

    @property
    def rep(self) -> str:
        """Who a verdict given in this session is recorded as: the owner, else the key's id."""
        return self.owner or self.key_id

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's token is this session's (compared in constant time)."""
        return presented is not None and hmac.compare_digest(self.csrf.encode(), presented.encode())


def signing_key(settings: Settings, keys: KeyRing) -> bytes:
    """The key the cookies are signed with: from ``LEADSCORE_SESSION_SECRET`` when set, else
    from the configured API keys' digests, which every worker of a deployment shares (see
    :mod:`leadscore.serving.settings`)."""
    if settings.session_secret is not None:
        material = b"secret:" + settings.session_secret.get_secret_value().encode()
    else:
        material = b"keys:" + keys.fingerprint()
    return hmac.new(_CONTEXT, material, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and reads session cookies with one signing key."""

    def __init__(self, key: bytes, keys: KeyRing):
        self._key = key
        self._keys = keys

    def issue(self, key: ApiKey, now: float) -> tuple[str, Session]:
        """A new session of `key` (a fresh CSRF token) and its cookie value."""
        session = Session(
            key.key_id, key.owner, secrets.token_urlsafe(32), int(now + LIFETIME.total_seconds())
        )
        return self.dumps(session), session

    def dumps(self, session: Session) -> str:
        """The cookie value of `session`: payload, a dot, its signature."""
        fields = {"k": session.key_id, "o": session.owner, "c": session.csrf, "e": session.expires}
        payload = _b64(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def loads(self, value: str | None, now: float) -> Session | None:
        """The session in a cookie value if its signature holds, it has not expired and its
        key is still configured with the `rep` scope and the same owner; else None."""
        if not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode()):
            return None
        try:
            fields = json.loads(_unb64(payload))
            session = Session(str(fields["k"]), fields["o"], str(fields["c"]), int(fields["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):  # signed by us: not expected
            return None
        if session.expires <= now or not (session.owner is None or isinstance(session.owner, str)):
            return None
        key = self._keys.by_id(session.key_id)
        if key is None or REP_SCOPE not in key.scopes or key.owner != session.owner:
            return None
        return session


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, value: str) -> None:
    """Send the session cookie: HttpOnly, SameSite=Lax, Path=/app, Secure over https."""
    response.set_cookie(
        COOKIE, value, max_age=int(LIFETIME.total_seconds()), path=COOKIE_PATH,
        secure=_secure(request), httponly=True, samesite="lax",
    )  # fmt: skip


def clear_cookie(response: Response, request: Request) -> None:
    """Make the browser forget the session cookie."""
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="lax"
    )
