"""A bad model never takes the service down: digests checked before any parser reads a byte, a
child process loads and scores a candidate first, the registry is read with a timeout.

The test process itself is the proof that the process stays alive: LightGBM's native parser
segfaults or aborts on some corrupt boosters, and here it only ever sees one in a child.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadscore.serving import probe as probing
from leadscore.serving.api.service import ModelRefused, build_served
from leadscore.serving.digests import (
    DIGESTS_FILE,
    DigestError,
    digest_files,
    read_digests,
    verify,
    write_digests,
)
from leadscore.serving.loader import UNVERIFIED, load_scorer
from leadscore.serving.model_cli import verify_model
from leadscore.serving.probe import ProbeFailed, probe, sanitize
from leadscore.serving.registry import DIGESTS_TAG, REGISTRY_TIMEOUT_ENV, forget_cached_stores
from leadscore.serving.runtime import BOOSTER_FILE, SCORER_FILE
from leadscore.serving.settings import Settings
from tests.serving.conftest import ADMIN_KEY, SCORE_KEY, ClientFactory, tracking_restored
from tests.serving.leads import build_toy_model, random_body

NAME = "lead-scoring"
CRASHED = "crashed LightGBM's parser in a child process (SIG"


@pytest.fixture(autouse=True)
def own_crash_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test remembers its own crashes: a faked one must not stick to the digests of the
    shared toy model for later tests. Successes stay shared (one child per model a session)."""
    monkeypatch.setattr(probing, "_crashed", {})


@pytest.fixture
def fresh_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """No remembered success either: the next probe really starts a child."""
    monkeypatch.setattr(probing, "_probed", {})


# ---------------------------------------------------------------------------------------------
# faults: each is a function that damages a model directory in place


def _truncate(d: Path) -> None:
    data = (d / BOOSTER_FILE).read_bytes()
    (d / BOOSTER_FILE).write_bytes(data[: len(data) // 2])  # LightGBM segfaults or aborts


def _random_bytes(d: Path) -> None:
    (d / BOOSTER_FILE).write_bytes(os.urandom(4000))


def _empty(d: Path) -> None:
    (d / BOOSTER_FILE).write_bytes(b"")


def _no_scorer_json(d: Path) -> None:
    (d / SCORER_FILE).unlink()


def _changed(d: Path) -> None:  # a valid booster, edited after the digests were written
    text = (d / BOOSTER_FILE).read_text()
    (d / BOOSTER_FILE).write_text(text.replace("shrinkage=0.1", "shrinkage=0.2", 1))


FAULTS: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "random bytes": _random_bytes,
    "emptied": _empty,
    "missing scorer.json": _no_scorer_json,
    "mismatched digest": _changed,
}
# what the digest check says for each (the damage is found before any parser runs)
DIGEST_CAUSE = {
    "truncated": f"{BOOSTER_FILE}: sha256 mismatch",
    "random bytes": f"{BOOSTER_FILE}: sha256 mismatch",
    "emptied": f"{BOOSTER_FILE}: sha256 mismatch",
    "missing scorer.json": f"{SCORER_FILE}: missing",
    "mismatched digest": f"{BOOSTER_FILE}: sha256 mismatch",
}


def _copy(src: Path, dst: Path, digests: bool) -> Path:
    shutil.copytree(src, dst)
    (dst / DIGESTS_FILE).unlink(missing_ok=True)
    if digests:
        write_digests(dst)
    return dst


@pytest.fixture
def signed(toy_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the toy model with its digests.json."""
    return _copy(toy_model_dir, tmp_path / "signed", digests=True)


# ---------------------------------------------------------------------------------------------
# digests


def test_digests_cover_every_file_and_name_the_first_bad_one(tmp_path: Path) -> None:
    d = tmp_path / "m"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_bytes(b"abc")
    (d / "sub" / "b.bin").write_bytes(b"")
    files = write_digests(d)
    # SHA-256 of "abc" and of the empty string (FIPS 180-2 test vectors)
    assert files == {
        "a.txt": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "sub/b.bin": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
    assert json.loads((d / DIGESTS_FILE).read_text()) == {"algorithm": "sha256", "files": files}
    assert read_digests(d) == files
    assert verify(d, files) == files
    (d / "a.txt").write_bytes(b"abd")
    with pytest.raises(DigestError, match=r"^a\.txt: sha256 mismatch \(expected ba7816bf8f01"):
        verify(d, files)
    (d / "a.txt").unlink()
    with pytest.raises(DigestError, match=r"^a\.txt: missing$"):
        verify(d, files)
    (d / "a.txt").write_bytes(b"abc")
    (d / "extra.py").write_text("import os")
    with pytest.raises(DigestError, match=r"^extra\.py: unexpected file"):
        verify(d, files)


def test_a_malformed_digests_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / DIGESTS_FILE).write_text('{"algorithm": "md5", "files": {}}')
    with pytest.raises(DigestError, match="expected algorithm 'sha256', found 'md5'"):
        read_digests(tmp_path)
    (tmp_path / DIGESTS_FILE).write_text('{"algorithm": "sha256", "files": {"../x": "' + "a" * 64
                                         + '"}}')  # fmt: skip
    with pytest.raises(DigestError, match=r"bad entry '\.\./x'"):
        read_digests(tmp_path)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_model_with_digests_is_refused_before_any_parser(
    fault: str, signed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FAULTS[fault](signed)
    monkeypatch.setattr(probing, "command", _no_child)  # never gets that far
    with pytest.raises(DigestError, match=DIGEST_CAUSE[fault]) as caught:
        load_scorer(str(signed))
    assert str(caught.value).endswith("(checked against digests.json); not loaded")
    with pytest.raises(ModelRefused, match=DIGEST_CAUSE[fault]):
        build_served(str(signed), Settings())


def _no_child(directory: Path) -> list[str]:
    raise AssertionError(f"no child process should have been started for {directory}")


def test_a_model_with_digests_loads_verified(signed: Path) -> None:
    scorer = load_scorer(str(signed))
    assert scorer.meta["integrity"] == {"status": "verified", "files": 2, "source": DIGESTS_FILE}


def test_a_model_without_digests_loads_unverified_with_a_warning(
    toy_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert not (toy_model_dir / DIGESTS_FILE).exists()
    with caplog.at_level("WARNING", logger="leadscore.serving.loader"):
        scorer = load_scorer(str(toy_model_dir))
    assert scorer.meta["integrity"] == {"status": "unverified", "detail": UNVERIFIED}
    assert any("no digests recorded" in r.getMessage() for r in caplog.records)


def test_the_model_route_shows_what_the_digests_check_found(
    make_client: ClientFactory, toy_model_dir: Path, signed: Path
) -> None:
    unverified = make_client(model_uri=str(toy_model_dir))
    info = unverified.get("/v1/model", headers={"X-API-Key": SCORE_KEY}).json()
    assert info["integrity"]["status"] == "unverified"
    assert info["integrity"]["detail"] == UNVERIFIED
    verified = make_client(model_uri=str(signed))
    info = verified.get("/v1/model", headers={"X-API-Key": SCORE_KEY}).json()
    assert info["integrity"] == {
        "status": "verified",
        "source": DIGESTS_FILE,
        "files": 2,
        "detail": None,
    }


# ---------------------------------------------------------------------------------------------
# the child process


def _fake_child(code: str) -> Callable[[Path], list[str]]:
    return lambda directory: [sys.executable, "-c", code]


def test_a_child_killed_by_a_signal_refuses_the_model(
    signed: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_probes: None,
) -> None:
    # what LightGBM does to its process on a truncated booster, without LightGBM
    crash = "import os, signal; print('leadscore-probe: stage load', flush=True); " \
            "os.kill(os.getpid(), signal.SIGSEGV)"  # fmt: skip
    monkeypatch.setattr(probing, "command", _fake_child(crash))
    with pytest.raises(ProbeFailed) as caught:
        load_scorer(str(signed))
    assert str(caught.value) == (
        "model.lgb crashed LightGBM's parser in a child process (SIGSEGV); not loaded"
    )
    # remembered for these files: asked again, no child is started
    monkeypatch.setattr(probing, "command", _no_child)
    with pytest.raises(ProbeFailed, match=r"\(SIGSEGV\)"):
        load_scorer(str(signed))


def test_leaked_text_from_the_child_is_cut_to_printable_ascii(
    signed: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_probes: None,
) -> None:
    noise = (
        "import sys; sys.stdout.buffer.write(b'leadscore-probe: error LightGBMError: met "
        "\\x00\\xff\\x1b[31m' + b'A' * 5000 + b'\\n'); sys.exit(1)"
    )
    monkeypatch.setattr(probing, "command", _fake_child(noise))
    with pytest.raises(ProbeFailed) as caught:
        probe(signed, digest_files(signed))
    message = str(caught.value)
    assert message.startswith("the model failed in a child process: LightGBMError: met [31mAAA")
    assert message.isascii() and message.isprintable()
    assert len(message) < 300


def test_sanitize() -> None:
    assert sanitize("a\x00b\n\tc\xe9d") == "a b c d"
    assert sanitize("x" * 500) == "x" * 197 + "..."


def test_a_hanging_child_is_stopped_at_the_timeout(
    signed: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_probes: None,
) -> None:
    monkeypatch.setattr(probing, "command", _fake_child("import time; time.sleep(600)"))
    with pytest.raises(ProbeFailed, match=r"within 0\.5 s in a child process; not loaded"):
        probe(signed, digest_files(signed), timeout=0.5)


@pytest.mark.slow  # starts a real child (seconds: it imports pandas and LightGBM)
def test_a_successful_probe_is_remembered_by_the_files_digests(
    signed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_probes: None,
) -> None:
    first = probe(signed, digest_files(signed))
    assert first.cached is False and 0 < first.probability < 1
    monkeypatch.setattr(probing, "command", _no_child)
    again = load_scorer(str(signed))  # same files: no second child
    assert again.meta["integrity"]["status"] == "verified"
    other = _copy(signed, tmp_path / "other", digests=False)
    scorer_json = json.loads((other / SCORER_FILE).read_text())
    scorer_json["meta"]["note"] = "changed"
    (other / SCORER_FILE).write_text(json.dumps(scorer_json))
    with pytest.raises(AssertionError, match="no child process should have been started"):
        load_scorer(str(other))  # a changed file is a new key: probed again


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["truncated", "header only", "random bytes", "emptied"])
def test_a_corrupt_booster_without_digests_is_caught_by_the_child(
    fault: str, toy_model_dir: Path, tmp_path: Path
) -> None:
    d = _copy(toy_model_dir, tmp_path / "bad", digests=False)
    if fault == "header only":  # the trees cut off: LightGBM aborts
        data = (d / BOOSTER_FILE).read_bytes()
        (d / BOOSTER_FILE).write_bytes(data[: data.index(b"Tree=0")])
    else:
        FAULTS[fault](d)
    with pytest.raises(ModelRefused) as caught:
        build_served(str(d), Settings())
    message = str(caught.value)
    if fault in ("truncated", "header only"):
        assert CRASHED in message and message.endswith("; not loaded")
    else:
        assert "the model failed in a child process: LightGBMError: Unknown model format" in message
    assert message.isascii()


def test_a_directory_without_scorer_json_is_refused(toy_model_dir: Path, tmp_path: Path) -> None:
    d = _copy(toy_model_dir, tmp_path / "bad", digests=False)
    _no_scorer_json(d)
    with pytest.raises(ModelRefused, match="neither a leadscore model directory"):
        build_served(str(d), Settings())


# ---------------------------------------------------------------------------------------------
# the service: startup with a bad model, the CLI


def test_startup_with_a_bad_model_serves_nothing_and_stays_alive(
    make_client: ClientFactory, signed: Path
) -> None:
    _truncate(signed)
    client = make_client(model_uri=str(signed))
    ready = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY})
    assert ready.status_code == 503
    assert "model.lgb: sha256 mismatch" in ready.json()["error"]
    assert client.get("/healthz").status_code == 200
    score = client.post("/v1/score", json=random_body(random.Random(1), 0),
                        headers={"X-API-Key": SCORE_KEY})  # fmt: skip
    assert score.status_code == 503


@pytest.mark.slow
def test_startup_with_a_crashing_model_serves_nothing_and_stays_alive(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    d = _copy(toy_model_dir, tmp_path / "bad", digests=False)
    _truncate(d)
    client = make_client(model_uri=str(d))
    ready = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY})
    assert ready.status_code == 503 and CRASHED in ready.json()["error"]
    assert client.get("/healthz").status_code == 200


def test_model_verify_cli(signed: Path) -> None:
    from leadscore.cli import app

    good = CliRunner().invoke(app, ["model", "verify", str(signed)])
    assert good.exit_code == 0, good.output
    lines = good.stdout.splitlines()
    assert lines[0].startswith("ok   fetch: ")
    assert lines[1] == "ok   digests: 2 files match digests.json"
    assert lines[2].startswith("ok   probe: loaded and scored the example lead in a child")
    _changed(signed)
    bad = CliRunner().invoke(app, ["model", "verify", str(signed)])
    assert bad.exit_code == 1
    assert "FAIL digests: model.lgb: sha256 mismatch" in bad.stdout
    assert "probe" not in bad.stdout  # a file that fails its digest is never parsed
    assert "Traceback" not in bad.output
    assert bad.stderr.strip().splitlines() == [f"error: {signed} did not verify: digests failed"]


def test_verify_model_reports_a_missing_model_as_a_failed_check(tmp_path: Path) -> None:
    report = verify_model(str(tmp_path / "nowhere"))
    assert not report.ok
    assert [c.name for c in report.checks] == ["fetch"]
    assert "no such model directory" in report.checks[0].detail


# ---------------------------------------------------------------------------------------------
# the registry: versions with the tag, the watcher


def _register(model_dir: Path) -> str:
    import mlflow

    from leadscore.features.config import FeatureConfig
    from leadscore.training.tracking import log_scorer_model

    meta = json.loads((model_dir / SCORER_FILE).read_text())["meta"]
    with mlflow.start_run():
        _, version = log_scorer_model(
            model_dir, FeatureConfig.model_validate(meta["feature_config"]), NAME
        )
    return version


def _stored(version: str) -> Path:
    """The scorer directory of a registered version inside the local artifact store."""
    import mlflow

    root = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}"))
    (scorer,) = (p.parent for p in (root / "artifacts").glob(f"*/{SCORER_FILE}"))
    return scorer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One throwaway store for this module (creating one costs seconds): the toy model (seed 5)
    registered as version 1, champion; a second toy model (seed 6) to register as needed."""
    import mlflow

    home = tmp_path_factory.mktemp("safety-store")
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with tracking_restored(), pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)  # artifacts go to ./mlruns next to the store
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("safety")
        good = build_toy_model(home / "m5", seed=5)
        version = _register(good)
        mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", version)
        other = build_toy_model(home / "m6", seed=6)
        yield {"uri": uri, "home": home, "db": home / "mlflow.db", "other": other}


@pytest.fixture
def registry(store: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The module's store, champion -> version 1 again afterwards (each test registers the
    versions it damages)."""
    import mlflow

    monkeypatch.chdir(store["home"])
    mlflow.set_tracking_uri(store["uri"])
    yield store
    mlflow.set_tracking_uri(store["uri"])
    forget_cached_stores(store["db"].resolve())  # a test may have replaced the file
    mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", "1")


def _reload(client: Any) -> dict[str, Any]:
    response = client.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _version(client: Any) -> str:
    body = random_body(random.Random(2), 0)
    r = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY})
    assert r.status_code == 200, r.text
    version: str = r.json()["model"]["version"]
    return version


def _champion(version: str) -> None:
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(NAME, "champion", version)


@pytest.mark.slow
def test_a_registered_version_carries_the_digests_tag(registry: dict[str, Any]) -> None:
    import mlflow

    version = _register(registry["other"])
    tag = json.loads(mlflow.MlflowClient().get_model_version(NAME, version).tags[DIGESTS_TAG])
    files = tag["files"]
    assert tag["algorithm"] == "sha256"
    expected = {"MLmodel", "model_code.py", "artifacts/m6/model.lgb", "artifacts/m6/scorer.json"}
    assert expected <= set(files)
    assert "registered_model_meta" not in files
    assert len(json.dumps(tag, separators=(",", ":"))) < 5000
    scorer = load_scorer(f"models:/{NAME}/{version}")
    assert scorer.meta["integrity"] == {
        "status": "verified", "files": len(files), "source": "registry tag",
    }  # fmt: skip
    code = _stored(version).parent.parent / "model_code.py"
    code.write_text(code.read_text() + "\nimport os  # injected\n")
    with pytest.raises(DigestError, match=r"^model_code\.py: sha256 mismatch"):
        load_scorer(f"models:/{NAME}/{version}")


@pytest.mark.slow
def test_broken_versions_are_refused_and_the_old_one_keeps_serving(
    registry: dict[str, Any], make_client: ClientFactory
) -> None:
    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    assert _version(client) == "1"
    for fault, damage in FAULTS.items():
        broken = _register(registry["other"])
        damage(_stored(broken))
        _champion(broken)
        check = _reload(client)
        assert check["result"] == "refused", (fault, check)
        assert f"artifacts/m6/{DIGEST_CAUSE[fault]}" in check["detail"], fault
        assert "(checked against the registry tag leadscore.digests)" in check["detail"]
        assert _version(client) == "1", fault
        ready = client.get("/readyz", headers={"X-API-Key": ADMIN_KEY}).json()
        assert ready["ready"] is True and DIGEST_CAUSE[fault] in ready["error"], fault


@pytest.mark.slow
def test_a_crashing_version_without_digests_is_refused_and_the_old_one_keeps_serving(
    registry: dict[str, Any], make_client: ClientFactory
) -> None:
    import mlflow

    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    broken = _register(registry["other"])
    mlflow.MlflowClient().delete_model_version_tag(NAME, broken, DIGESTS_TAG)
    _truncate(_stored(broken))
    _champion(broken)
    check = _reload(client)
    assert check["result"] == "refused" and CRASHED in check["detail"], check
    assert _version(client) == "1"


@pytest.mark.slow
def test_a_version_without_digests_loads_unverified(registry: dict[str, Any]) -> None:
    import mlflow

    version = _register(registry["other"])
    mlflow.MlflowClient().delete_model_version_tag(NAME, version, DIGESTS_TAG)
    _champion(version)
    scorer = load_scorer(f"models:/{NAME}@champion")
    assert scorer.meta["integrity"] == {"status": "unverified", "detail": UNVERIFIED}
    assert scorer.meta["version"] == version


@pytest.mark.slow
def test_a_deleted_registry_is_unavailable_not_unchanged(
    registry: dict[str, Any], make_client: ClientFactory, tmp_path: Path
) -> None:
    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    assert _reload(client)["result"] == "unchanged"
    kept = shutil.copy2(registry["db"], tmp_path / "kept.db")
    registry["db"].unlink()
    try:
        check = _reload(client)
    finally:
        shutil.copy2(kept, registry["db"])
    assert check["result"] == "error"
    assert check["detail"].startswith("registry unavailable: ")
    assert "no such file" in check["detail"]
    assert _version(client) == "1"
    assert _reload(client)["result"] == "unchanged"  # back: read again


@pytest.mark.slow
def test_a_recreated_registry_is_read_anew(
    registry: dict[str, Any], make_client: ClientFactory, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from leadscore.serving.lead_scoring import score_bodies

    other = _register(registry["other"])
    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    assert _reload(client)["result"] == "unchanged"
    # another database file with the same versions, whose champion is the other model
    copy = tmp_path / "mlflow.db"
    with sqlite3.connect(registry["db"]) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    MlflowClient(f"sqlite:///{copy}").set_registered_model_alias(NAME, "champion", other)
    copy.replace(registry["db"])  # a new file (inode) under the same name
    check = _reload(client)
    assert check["result"] == "swapped", check
    body = random_body(random.Random(3), 0)
    r = client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY}).json()
    assert r["model"]["version"] == other
    expected = score_bodies(load_scorer(str(registry["other"])), [body])[0]["mql_probability"]
    assert r["mql_probability"] == expected


@pytest.mark.slow
def test_a_locked_registry_gives_up_at_the_timeout(
    registry: dict[str, Any], make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client(tracking_uri=registry["uri"], reload_interval_seconds=3600)
    monkeypatch.setenv(REGISTRY_TIMEOUT_ENV, "1")
    lock = sqlite3.connect(registry["db"], isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        check = _reload(client)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert check["result"] == "error"
    assert check["detail"].startswith("registry unavailable: no answer within 1 s")
    assert _version(client) == "1"
    assert _reload(client)["result"] == "unchanged"  # the lock gone, the registry reads again


@pytest.mark.slow
def test_the_training_path_writes_digests_and_the_tag(trained: dict[str, Any]) -> None:
    import mlflow
    from mlflow import MlflowClient

    with tracking_restored():
        mlflow.set_tracking_uri(trained["uri"])
        tag = json.loads(MlflowClient().get_model_version(NAME, "1").tags[DIGESTS_TAG])
        scorer = load_scorer(f"models:/{NAME}@champion")
        report = verify_model(f"models:/{NAME}@champion")
    files = tag["files"]
    model_files = {"artifacts/scorer/scorer.json"} | (
        {"artifacts/scorer/model.lgb"} if scorer.family == "lightgbm" else set()
    )
    assert {"model_code.py", *model_files} <= set(files)
    assert scorer.meta["integrity"]["source"] == "registry tag"
    local = Path(trained["home"])
    (recorded,) = [read_digests(p.parent) for p in local.rglob(f"artifacts/scorer/{DIGESTS_FILE}")]
    assert recorded == {k.removeprefix("artifacts/scorer/"): v for k, v in files.items()
                        if k.startswith("artifacts/scorer/")}  # fmt: skip
    assert report.ok, report.lines()
    assert [c.name for c in report.checks] == ["fetch", "digests", "code file", "probe"]


def test_signal_names_are_reported() -> None:
    assert probing._signal_name(-signal.SIGABRT) == "SIGABRT"
