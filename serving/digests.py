"""SHA-256 digests of a model's files, checked before any parser reads a byte of them.

Training writes ``digests.json`` beside the scorer files (``{"algorithm": "sha256", "files":
{relative path: hex digest}}``) and a copy, covering the whole logged MLflow model (its code
file included), as the registry version's ``leadscore.digests`` tag: the trusted copy, since
whoever can write the artifact store cannot necessarily write the registry.

:func:`verify` is strict: every listed file must exist and match, and a file that the digests do
not list is refused too (``unexpected file``), so nothing unverified sits beside the model.
``digests.json`` itself and MLflow's ``registered_model_meta`` (rewritten by MLflow on every
download of a ``models:/`` URI) are the only files never listed. Nothing here imports MLflow or
LightGBM.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from leadscore.serving.runtime import ScorerError

DIGESTS_FILE = "digests.json"
ALGORITHM = "sha256"
# Written by MLflow into a downloaded models:/ directory (differs between downloads).
MLFLOW_META_FILE = "registered_model_meta"
NEVER_LISTED = frozenset({DIGESTS_FILE, MLFLOW_META_FILE})
_CHUNK = 1 << 20


class DigestError(ScorerError):
    """A model file is missing, changed, unlisted, or the digests themselves are unreadable."""


def file_digest(path: Path) -> str:
    """The SHA-256 of one file (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(directory: Path) -> list[str]:
    """Every file under `directory` as sorted POSIX relative paths, minus the never-listed."""
    return sorted(
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() and p.name not in NEVER_LISTED
    )


def digest_files(directory: Path | str) -> dict[str, str]:
    """SHA-256 of every file under `directory` (relative POSIX path -> hex), except
    ``digests.json`` and MLflow's ``registered_model_meta``."""
    root = Path(directory)
    return {rel: file_digest(root / rel) for rel in _files(root)}


def document(files: Mapping[str, str]) -> dict[str, Any]:
    """The JSON form of a set of digests (``digests.json`` and the registry tag)."""
    return {"algorithm": ALGORITHM, "files": dict(sorted(files.items()))}


def write_digests(directory: Path | str) -> dict[str, str]:
    """Write ``digests.json`` covering every other file of `directory`; returns the digests."""
    root = Path(directory)
    files = digest_files(root)
    (root / DIGESTS_FILE).write_text(json.dumps(document(files), indent=1) + "\n")
    return files


def parse(text: str, origin: str) -> dict[str, str]:
    """The file digests of a ``digests.json`` text or registry tag; :class:`DigestError` naming
    `origin` when it is not one."""
    try:
        data = json.loads(text)
    except ValueError:
        raise DigestError(f"{origin}: not valid JSON") from None
    if not isinstance(data, dict) or data.get("algorithm") != ALGORITHM:
        found = data.get("algorithm") if isinstance(data, dict) else type(data).__name__
        raise DigestError(f"{origin}: expected algorithm {ALGORITHM!r}, found {found!r}")
    files = data.get("files")
    if not isinstance(files, dict) or not files:
        raise DigestError(f"{origin}: expected a non-empty 'files' object of path -> digest")
    for rel, hexdigest in files.items():
        bad_path = rel.startswith("/") or ".." in rel.split("/")
        if bad_path or not isinstance(hexdigest, str) or len(hexdigest) != 64:
            raise DigestError(f"{origin}: bad entry {str(rel)[:80]!r}")
    return {str(k): str(v) for k, v in files.items()}


def read_digests(directory: Path | str) -> dict[str, str] | None:
    """The digests recorded in `directory`'s ``digests.json``; None when there is none."""
    path = Path(directory) / DIGESTS_FILE
    if not path.is_file():
        return None
    return parse(path.read_text(errors="replace"), DIGESTS_FILE)


def _short(hexdigest: str) -> str:
    return hexdigest[:12] + "..."


def verify(directory: Path | str, expected: Mapping[str, str]) -> dict[str, str]:
    """Check every file of `directory` against `expected` (relative path -> SHA-256 hex).

    Raises :class:`DigestError` naming the first bad file: ``model.lgb: sha256 mismatch
    (expected ab12..., found cd34...)``, ``scorer.json: missing``, or ``extra.bin: unexpected
    file (not in the digests)``. Returns the digests found (equal to `expected`).
    """
    root = Path(directory)
    found: dict[str, str] = {}
    for rel in sorted(expected):
        path = root / rel
        if not path.is_file():
            raise DigestError(f"{rel}: missing")
        found[rel] = file_digest(path)
        if found[rel] != expected[rel].lower():
            raise DigestError(
                f"{rel}: sha256 mismatch (expected {_short(expected[rel])}, "
                f"found {_short(found[rel])})"
            )
    unexpected = [rel for rel in _files(root) if rel not in expected]
    if unexpected:
        raise DigestError(f"{unexpected[0]}: unexpected file (not in the digests)")
    return found


def under(files: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The entries of `files` below the folder `prefix` ('' for all), relative to it."""
    if not prefix:
        return dict(files)
    head = prefix.rstrip("/") + "/"
    return {rel.removeprefix(head): d for rel, d in files.items() if rel.startswith(head)}


def agree(recorded: Mapping[str, str], trusted: Mapping[str, str], origin: str) -> None:
    """Raise :class:`DigestError` when `recorded` (a ``digests.json``) differs from the trusted
    digests of the same folder in any file."""
    for rel in sorted(set(recorded) | set(trusted)):
        if recorded.get(rel) != trusted.get(rel):
            raise DigestError(f"{origin} disagrees with the registry tag on {rel}")
