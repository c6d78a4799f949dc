"""API keys with scopes: `score` (the scoring routes and model details), `feedback` (the handoff
queue, reps' verdicts and outcomes), `admin` (metrics and the model reload) and `rep` (signing
in to the reps' pages under ``/app``).

Keys come from ``LEADSCORE_API_KEYS`` (``KEY:SCOPE[+SCOPE],...``, e.g.
``k1:score,k2:score+admin``) and/or the file named by ``LEADSCORE_API_KEYS_FILE``: one key per
line, either ``KEY:SCOPES`` or, hashed at rest, ``sha256:HEX:SCOPES`` where HEX is the SHA-256
of the key (:func:`hash_key`). Blank lines and ``#`` comments are ignored. A rep key may name
its rep, ``KEY:rep=rep_000004`` (combinable: ``KEY:rep=rep_000004+feedback``): its holder sees
that rep's leads only; a ``rep`` key without an owner sees every rep's (a team lead). Only
digests are kept in memory; a presented key is hashed and compared with every stored digest in
constant time. No key or an unknown one: 401; a key without the route's scope: 403.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, get_args

from fastapi import HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from leadscore.features.errors import UsageProblem

Scope = Literal["score", "feedback", "admin", "rep"]
SCOPES: tuple[str, ...] = get_args(Scope)
HEADER = "X-API-Key"
_HEX = frozenset("0123456789abcdef")
_OWNER_LENGTH = 200  # the store's owner column
Entry = tuple[str, frozenset[str], str | None]  # (hex digest, scopes, owner)


class KeyConfigError(UsageProblem, ValueError):
    """The configured keys cannot be read (unknown scope, malformed entry, missing file)."""


@dataclass(frozen=True)
class ApiKey:
    """An accepted key: its id (a digest prefix, safe to log), scopes and, for a rep key that
    names its rep, the owner whose leads it sees."""

    key_id: str
    scopes: frozenset[str]
    owner: str | None = None


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as stored in a keys file (``sha256:HEX:SCOPES``)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _scopes_and_owner(scope_text: str, where: str) -> tuple[frozenset[str], str | None]:
    """``score+rep=rep_04`` as ({score, rep}, "rep_04"); only `rep` takes ``=OWNER``."""
    scopes: set[str] = set()
    owner = None
    for part in (p.strip() for p in scope_text.split("+")):
        if not part:
            continue
        name, eq, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if eq and name != "rep":
            raise KeyConfigError(f"{where}: only the rep scope names an owner (rep=OWNER)")
        if eq and not value:
            raise KeyConfigError(f"{where}: rep= needs the rep's owner id, e.g. rep=rep_000004")
        if eq and (len(value) > _OWNER_LENGTH or any(c.isspace() for c in value)):
            raise KeyConfigError(
                f"{where}: owner {value[:40]!r} must be one word of at most {_OWNER_LENGTH} "
                "characters"
            )
        if eq and owner is not None and value != owner:
            raise KeyConfigError(f"{where}: a key names one rep, not {owner!r} and {value!r}")
        owner = value or owner
        scopes.add(name)
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise KeyConfigError(f"{where}: unknown or missing scope {unknown}; expected {SCOPES}")
    return frozenset(scopes), owner


def _parse_entry(entry: str, where: str) -> Entry:
    """(digest, scopes, owner) of one ``KEY:SCOPES`` or ``sha256:HEX:SCOPES`` entry."""
    key, sep, scope_text = entry.strip().rpartition(":")
    if not sep or not key:
        raise KeyConfigError(f"{where}: expected KEY:SCOPE[+SCOPE]")
    scopes, owner = _scopes_and_owner(scope_text, where)
    if key.startswith("sha256:"):
        digest = key.removeprefix("sha256:").lower()
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise KeyConfigError(f"{where}: sha256 digest must be 64 hex characters")
        return digest, scopes, owner
    return hash_key(key), scopes, owner


class KeyRing:
    """The accepted keys, held as SHA-256 digests."""

    def __init__(self, entries: Iterable[Entry] = ()):
        self._entries = tuple((bytes.fromhex(d), s, o) for d, s, o in entries)

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
        found: ApiKey | None = None
        for stored, scopes, owner in self._entries:
            if hmac.compare_digest(stored, digest):
                found = ApiKey(_key_id(stored), scopes, owner)
        return found

    def by_id(self, key_id: str) -> ApiKey | None:
        """The key whose id is `key_id` if it is still configured (a signed-in session names
        its key by id; a key removed from the ring ends its sessions). Compares every id."""
        wanted = key_id.encode()
        found: ApiKey | None = None
        for stored, scopes, owner in self._entries:
            if hmac.compare_digest(_key_id(stored).encode(), wanted):
                found = ApiKey(_key_id(stored), scopes, owner)
        return found

    def fingerprint(self) -> bytes:
        """SHA-256 over the configured digests (sorted): the same in every process reading the
        same keys, whatever their order (the pages' signing key derives from it when no session
        secret is set); another once a key is added or removed."""
        return hashlib.sha256(b"".join(sorted(d for d, _, _ in self._entries))).digest()


def _key_id(digest: bytes) -> str:
    """A key's id: the first 12 hex characters of its digest (safe to log and to show)."""
    return digest.hex()[:12]


class ScopedKey(APIKeyHeader):
    """The `X-API-Key` security scheme (documented as ``APIKeyHeader``) as the dependency that
    admits a request whose key has `scope` (401 / 403 otherwise): one dependency per request
    where a checker on top of the plain header scheme would be two."""

    def __init__(self, scope: Scope):
        super().__init__(name=HEADER, scheme_name="APIKeyHeader", auto_error=False,
                         description="An API key.")  # fmt: skip
        self.scope = scope

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        """The request's key (async: no I/O, so no thread-pool hand-off per request)."""
        return admit(request.app.state.keys, request.headers.get(HEADER), self.scope)


def admit(keys: KeyRing, presented: str | None, scope: Scope) -> ApiKey:
    """The presented key if it is one of `keys` and has `scope`; 401 or 403 otherwise."""
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


ScoreKey = Annotated[ApiKey, Security(ScopedKey("score"))]
AdminKey = Annotated[ApiKey, Security(ScopedKey("admin"))]
FeedbackKey = Annotated[ApiKey, Security(ScopedKey("feedback"))]
