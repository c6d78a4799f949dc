"""API keys with scopes: `score` (the scoring routes and model details), `feedback` (the handoff
queue, reps' verdicts and outcomes) and `admin` (metrics and the model reload).

Keys come from ``LEADSCORE_API_KEYS`` (``KEY:SCOPE[+SCOPE],...``, e.g.
``k1:score,k2:score+admin``) and/or the file named by ``LEADSCORE_API_KEYS_FILE``: one key per
line, either ``KEY:SCOPES`` or, hashed at rest, ``sha256:HEX:SCOPES`` where HEX is the SHA-256
of the key (:func:`hash_key`). Blank lines and ``#`` comments are ignored. Only digests are
kept in memory; a presented key is hashed and compared with every stored digest in constant
time. No key or an unknown one: 401; a key without the route's scope: 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from leadscore.features.errors import UsageProblem

Scope = Literal["score", "feedback", "admin"]
SCOPES: tuple[str, ...] = get_args(Scope)
HEADER = "X-API-Key"
_HEX = frozenset("0123456789abcdef")


class KeyConfigError(UsageProblem, ValueError):
    """The configured keys cannot be read (unknown scope, malformed entry, missing file)."""


@dataclass(frozen=True)
class ApiKey:
    """An accepted key: its id (a digest prefix, safe to log) and scopes."""

    key_id: str
    scopes: frozenset[str]


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as stored in a keys file (``sha256:HEX:SCOPES``)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _parse_entry(entry: str, where: str) -> tuple[str, frozenset[str]]:
    """(digest, scopes) of one ``KEY:SCOPES`` or ``sha256:HEX:SCOPES`` entry."""
    key, sep, scope_text = entry.strip().rpartition(":")
    if not sep or not key:
        raise KeyConfigError(f"{where}: expected KEY:SCOPE[+SCOPE]")
    scopes = frozenset(s.strip() for s in scope_text.split("+") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise KeyConfigError(f"{where}: unknown or missing scope {unknown}; expected {SCOPES}")
    if key.startswith("sha256:"):
        digest = key.removeprefix("sha256:").lower()
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise KeyConfigError(f"{where}: sha256 digest must be 64 hex characters")
        return digest, scopes
    return hash_key(key), scopes


class KeyRing:
    """The accepted keys, held as SHA-256 digests."""

    def __init__(self, entries: Iterable[tuple[str, frozenset[str]]] = ()):
        self._entries = tuple((bytes.fromhex(d), s) for d, s in entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_sources(cls, env_value: str | None, file: Path | None) -> KeyRing:
        """Keys from the environment variable's text and/or a keys file."""
        entries = []
        for i, part in enumerate((env_value or "").split(",")):
            if part.strip():
                entries.append(_parse_entry(part, f"LEADSCORE_API_KEYS entry {i + 1}"))
        if file is not None:
            if not file.is_file():
                raise KeyConfigError(f"{file}: API keys file not found")
            for n, line in enumerate(file.read_text().splitlines(), start=1):
                text = line.split("#", 1)[0].strip()
                if text:
                    entries.append(_parse_entry(text, f"{file} line {n}"))
        return cls(entries)

    def lookup(self, presented: str) -> ApiKey | None:
        """The key's scopes if it is one of ours; compares against every digest."""
        digest = hashlib.sha256(presented.encode()).digest()
        found: frozenset[str] | None = None
        for stored, scopes in self._entries:
            if hmac.compare_digest(stored, digest):
                found = scopes
        return None if found is None else ApiKey(digest.hex()[:12], found)


api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="An API key.")


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that admits a request whose key has `scope` (401 / 403 otherwise)."""

    async def dependency(  # async: no I/O, so no thread-pool hand-off per request
        request: Request, presented: Annotated[str | None, Security(api_key_header)]
    ) -> ApiKey:
        keys: KeyRing = request.app.state.keys
        key = keys.lookup(presented) if presented else None
        if key is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=f"a valid API key is required in the {HEADER} header",
                headers={"WWW-Authenticate": "ApiKey"},
            )
        if scope not in key.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"this API key lacks the {scope!r} scope"
            )
        return key

    return dependency


ScoreKey = Annotated[ApiKey, Depends(require("score"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
FeedbackKey = Annotated[ApiKey, Depends(require("feedback"))]
