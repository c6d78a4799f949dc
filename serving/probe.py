"""Load a candidate model and score the example lead in a child process, before this one does.

LightGBM's native model parser segfaults or aborts on some corrupt files (a truncated booster
does), which no ``try`` can catch: the process is gone. So a model directory is first loaded
with the same :meth:`Scorer.from_dir` and smoke-scored (score and contributions of the example
lead) by ``python -m leadscore.serving.probe DIR``; only when that child exits 0 does the caller
load it in-process. A child killed by a signal, one that fails, or one that takes longer than
``LEADSCORE_PROBE_TIMEOUT_SECONDS`` (default 60) refuses the model with one line. Text passed on
from the child is printable ASCII only and short (LightGBM's errors have leaked unrelated
memory). The outcome is remembered for this process, keyed by the digests of the model's files
(a success, and a crash or reported error; not a timeout or a SIGKILL, which may pass).
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, get_args

from leadscore.features.errors import LeadscoreError

if TYPE_CHECKING:
    from leadscore.serving.runtime import Scorer

PROBE_TIMEOUT_ENV = "LEADSCORE_PROBE_TIMEOUT_SECONDS"
DEFAULT_PROBE_TIMEOUT_S = 60.0
MARK = "leadscore-probe:"  # our lines in the child's output (LightGBM prints there too)
_TAIL_BYTES = 64 * 1024  # what is read back of the child's output
_MAX_TEXT = 200

Key = tuple[tuple[str, str], ...]  # the files' digests, sorted
_probed: dict[Key, float] = {}  # -> the example lead's probability
_crashed: dict[Key, str] = {}  # -> why (crashes and reported errors: the same bytes fail again)
_probed_lock = threading.Lock()


class ProbeFailed(LeadscoreError, ValueError):
    """The model crashed, failed or hung while loading or scoring in the child process."""


@dataclass(frozen=True)
class ProbeResult:
    """A successful probe: the example lead's probability and the child's wall time."""

    probability: float
    seconds: float
    cached: bool


def sanitize(text: str, limit: int = _MAX_TEXT) -> str:
    """Printable ASCII on one line, at most `limit` characters (with ``...`` when cut)."""
    flat = re.sub(r"[^\x20-\x7e]+", " ", text)
    flat = re.sub(r" {2,}", " ", flat).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def probe_timeout() -> float:
    """`LEADSCORE_PROBE_TIMEOUT_SECONDS` (default 60)."""
    raw = os.environ.get(PROBE_TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_PROBE_TIMEOUT_S
    except ValueError:
        raise ProbeFailed(f"{PROBE_TIMEOUT_ENV}={raw!r}: expected a number of seconds") from None
    if not value > 0:
        raise ProbeFailed(f"{PROBE_TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


def command(directory: Path) -> list[str]:
    """The child's command line (a seam for tests)."""
    return [sys.executable, "-m", "leadscore.serving.probe", str(directory)]


def _tail(stream: IO[bytes]) -> str:
    stream.seek(0, os.SEEK_END)
    stream.seek(max(0, stream.tell() - _TAIL_BYTES))
    return stream.read().decode("ascii", errors="replace")


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _explain(returncode: int, output: str, directory: Path) -> str:
    from leadscore.serving.runtime import BOOSTER_FILE

    marks = [line.removeprefix(MARK).strip() for line in output.splitlines()
             if line.startswith(MARK)]  # fmt: skip
    stage = next((m.removeprefix("stage ") for m in reversed(marks) if m.startswith("stage ")), "")
    error = next((m.removeprefix("error ") for m in reversed(marks) if m.startswith("error ")), "")
    if returncode < 0:
        how = _signal_name(returncode)
        if stage in ("", "load") and (directory / BOOSTER_FILE).exists():
            return (f"{BOOSTER_FILE} crashed LightGBM's parser in a child process ({how}); "
                    "not loaded")  # fmt: skip
        what = "scoring the example lead" if stage == "score" else "loading the model"
        return f"the model crashed {what} in a child process ({how}); not loaded"
    if error:
        return f"the model failed in a child process: {sanitize(error)}; not loaded"
    last = next((ln for ln in reversed(output.splitlines()) if ln.strip()), "no output")
    return f"the model probe exited {returncode} in a child process: {sanitize(last)}; not loaded"


def _reported(output: str) -> float:
    found = re.findall(rf"^{MARK} ok p=(\S+)$", output, flags=re.MULTILINE)
    try:
        return float(found[-1]) if found else math.nan
    except ValueError:
        return math.nan


def probe(
    directory: Path | str, digests: Mapping[str, str], timeout: float | None = None
) -> ProbeResult:
    """Load and smoke-score the model directory in a child process; raise :class:`ProbeFailed`
    with one line when it crashes, fails or hangs. `digests` (every file's SHA-256) key the
    in-process memo of successes: the same files are probed once per process."""
    path = Path(directory)
    key = tuple(sorted(digests.items()))
    with _probed_lock:
        if key in _probed:
            return ProbeResult(_probed[key], 0.0, cached=True)
        if key in _crashed:
            raise ProbeFailed(_crashed[key])
    limit = probe_timeout() if timeout is None else timeout
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        try:
            done = subprocess.run(command(path), stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=limit, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ProbeFailed(
                f"the model did not load and score the example lead within {limit:g} s in a "
                "child process; not loaded"
            ) from None
        output = _tail(out)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        why = _explain(done.returncode, output, path)
        crashed = done.returncode < 0 and -done.returncode != signal.SIGKILL
        if crashed or f"{MARK} error" in output:
            with _probed_lock:  # not a kill from outside (OOM killer, operator): remember it
                _crashed[key] = why
        raise ProbeFailed(why)
    probability = _reported(output)
    if not math.isfinite(probability):
        raise ProbeFailed("the model probe gave no finite probability for the example lead")
    with _probed_lock:
        _probed[key] = probability
    return ProbeResult(probability, seconds, cached=False)


def forget() -> None:
    """Drop what this process remembers of earlier probes (tests)."""
    with _probed_lock:
        _probed.clear()
        _crashed.clear()


# ---------------------------------------------------------------------------------------------
# the child


def _say(line: str) -> None:
    sys.stdout.write(f"{MARK} {line}\n")
    sys.stdout.flush()


def _spec_problems(scorer: Scorer) -> list[str]:
    # the kinds and dtypes this code knows (as the service's check_servable says it): an unknown
    # one would otherwise fail deep in the feature builder with a message that names neither
    from leadscore.features.spec import DType, Kind

    kinds, dtypes = set(get_args(Kind)), set(get_args(DType))
    problems = [f"feature {f.name!r}: unknown kind {f.kind!r}" for f in scorer.spec
                if f.kind not in kinds]  # fmt: skip
    problems += [f"feature {f.name!r}: unknown dtype {f.dtype!r}" for f in scorer.spec
                 if f.dtype not in dtypes]  # fmt: skip
    return problems


def run_child(directory: Path) -> int:
    """The child's work: load, score the example lead with contributions; 0 when all held."""
    from leadscore.features.config import FeatureConfig
    from leadscore.serving.examples import example_body
    from leadscore.serving.lead_scoring import parse_bodies
    from leadscore.serving.runtime import Scorer

    _say("stage load")
    scorer = Scorer.from_dir(directory)
    problems = _spec_problems(scorer)
    if problems:
        _say("error the model's feature spec cannot be served: " + "; ".join(problems))
        return 1
    _say("stage score")
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    (parsed,) = parse_bodies(scorer, [example_body(config)])
    row = scorer.feature_row(parsed.lead, parsed.account, parsed.contact, parsed.events,
                             parsed.as_of)  # fmt: skip
    probability = float(scorer.score_row(row)["mql_probability"])
    contributions, base = scorer.contributions(row)
    finite = math.isfinite(probability) and math.isfinite(base + float(contributions.sum()))
    if not finite:
        _say(f"error the example lead's score is not finite (p={probability!r})")
        return 1
    _say(f"ok p={probability!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m leadscore.serving.probe DIR``: exit 0 when the model loads and scores."""
    # LightGBM imports scikit-learn when it is installed (seconds of the child's start-up) and
    # needs none of it to load and predict; this module imports neither at its top for this
    sys.modules.setdefault("sklearn", None)  # type: ignore[arg-type]  # None: "not there"
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m leadscore.serving.probe MODEL_DIR\n")
        return 2
    try:
        return run_child(Path(args[0]))
    except LeadscoreError as exc:  # phrased for a person already
        _say(f"error {sanitize(str(exc))}")
        return 1
    except Exception as exc:  # every failure becomes one sanitized line for the parent
        _say(f"error {type(exc).__name__}: {sanitize(str(exc))}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
