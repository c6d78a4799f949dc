"""API keys: parsing (environment, file, hashed at rest), 401 without a key, 403 without scope."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.serving.auth import KeyConfigError, KeyRing, hash_key
from tests.serving.conftest import ADMIN_KEY, BOTH_KEY, KEYS, SCORE_KEY, ClientFactory
from tests.serving.leads import example


def test_keys_from_the_environment_and_a_hashed_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(
        "# hashed at rest\n"
        f"sha256:{hash_key('file-secret')}:score+admin\n"
        "\n"
        "plain-file-key:score   # a comment\n"
    )
    ring = KeyRing.from_sources("k1:score, k2:score+admin", keys)
    assert len(ring) == 4
    k1, k2 = ring.lookup("k1"), ring.lookup("k2")
    assert k1 is not None and k1.scopes == {"score"}
    assert k2 is not None and k2.scopes == {"score", "admin"}
    hashed = ring.lookup("file-secret")
    assert hashed is not None and hashed.scopes == {"score", "admin"}
    assert ring.lookup("plain-file-key") is not None
    assert ring.lookup("k3") is None and ring.lookup("") is None
    assert "file-secret" not in hashed.key_id  # the id is a digest prefix


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k1", "expected KEY:SCOPE"),
        ("k1:write", "unknown or missing scope ['write']"),
        ("k1:", "unknown or missing scope"),
        ("sha256:abc:score", "64 hex characters"),
        ("k1:score=rep_1", "only the rep scope names an owner"),
        ("k1:rep=", "rep= needs the rep's owner id"),
        ("k1:rep=rep_1+rep=rep_2", "names one rep, not 'rep_1' and 'rep_2'"),
        ("k1:rep=rep 1", "must be one word"),
    ],
)
def test_malformed_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match="entry 1") as err:
        KeyRing.from_sources(text, None)
    assert message in str(err.value)


def test_rep_keys_may_name_their_rep(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"sha256:{hash_key('hashed-rep')}:rep=rep_000007\n")
    ring = KeyRing.from_sources(
        "r1:rep=rep_000004, r2:feedback+rep=rep_000005, lead:rep, s:score", keys
    )
    r1, r2, lead, hashed = (ring.lookup(k) for k in ("r1", "r2", "lead", "hashed-rep"))
    assert r1 is not None and (r1.scopes, r1.owner) == ({"rep"}, "rep_000004")
    assert r2 is not None and (r2.scopes, r2.owner) == ({"rep", "feedback"}, "rep_000005")
    assert lead is not None and (lead.scopes, lead.owner) == ({"rep"}, None)
    assert hashed is not None and hashed.owner == "rep_000007"
    score = ring.lookup("s")
    assert score is not None and score.owner is None
    # a session names its key by id: found while the key is configured, by the whole id only
    assert ring.by_id(r1.key_id) == r1 and ring.by_id(hashed.key_id) == hashed
    assert ring.by_id(r1.key_id[:6]) is None and ring.by_id("0" * 12) is None


def test_the_rings_fingerprint_follows_its_keys_not_their_order() -> None:
    one = KeyRing.from_sources("a:score,b:rep=rep_1", None)
    same = KeyRing.from_sources(f"b:rep=rep_1,sha256:{hash_key('a')}:score", None)
    fewer = KeyRing.from_sources("a:score", None)
    assert one.fingerprint() == same.fingerprint() != fewer.fingerprint()
    assert len(one.fingerprint()) == 32


def test_a_missing_keys_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="not found"):
        KeyRing.from_sources(None, tmp_path / "nope.txt")


REP_KEY = "rep-key-1"


def test_routes_check_key_and_scope(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), api_keys=f"{KEYS},{REP_KEY}:rep=rep_1")
    body = example()

    no_key = client.post("/v1/score", json=body)
    assert no_key.status_code == 401
    assert no_key.headers["www-authenticate"] == "ApiKey"
    assert "X-API-Key" in no_key.json()["detail"]
    assert client.post("/v1/score", json=body, headers={"X-API-Key": "wrong"}).status_code == 401

    rep_only = client.post("/v1/score", json=body, headers={"X-API-Key": REP_KEY})
    assert rep_only.status_code == 403  # a rep key opens the pages, not the API
    admin_only = client.post("/v1/score", json=body, headers={"X-API-Key": ADMIN_KEY})
    assert admin_only.status_code == 403
    assert admin_only.json()["detail"] == "this API key lacks the 'score' scope"
    assert client.get("/metrics", headers={"X-API-Key": SCORE_KEY}).status_code == 403

    assert client.post("/v1/score", json=body, headers={"X-API-Key": SCORE_KEY}).status_code == 200
    assert client.get("/v1/model", headers={"X-API-Key": SCORE_KEY}).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": BOTH_KEY}).status_code == 200
    batch = client.post("/v1/score/batch", json={"leads": [body]}, headers={"X-API-Key": BOTH_KEY})
    assert batch.status_code == 200

    # liveness and readiness stay open to probes
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_no_configured_keys_admits_nobody(make_client: ClientFactory, toy_model_dir: Path) -> None:
    client = make_client(model_uri=str(toy_model_dir), api_keys=None)
    response = client.post("/v1/score", json=example(), headers={"X-API-Key": SCORE_KEY})
    assert response.status_code == 401


def test_keys_file_setting(
    make_client: ClientFactory, toy_model_dir: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"sha256:{hash_key('from-file')}:score\n")
    client = make_client(model_uri=str(toy_model_dir), api_keys=None, api_keys_file=keys)
    ok = client.post("/v1/score", json=example(), headers={"X-API-Key": "from-file"})
    assert ok.status_code == 200
