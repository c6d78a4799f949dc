"""The two model families: selection inside training, and the logistic family served through
the same runtime as LightGBM (JSON coefficients, exact linear reasons).

The worlds here are canonical tables drawn with numpy (benchmarks/synthetic.py) whose outcome
is linear and small by construction: the log-odds of winning are a sum of one fixed effect per
category of five nominal attributes (industry, region, role, buyer role, source), additive in
their one-hot columns, so a logistic regression on those features is the true model, and a
tree ensemble (one category split off per split) can at best approximate it. Few events, so
little noise elsewhere. Base rates of about 5%, 20% and 40%.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from leadscore.features.bodies import lead_bodies
from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData
from leadscore.features.payload import payload_model
from leadscore.features.spec import build_spec
from leadscore.serving.linear import LinearModel
from leadscore.serving.runtime import BOOSTER_FILE, Scorer, ScorerError
from leadscore.training.config import SelectionConfig, load_training_config
from leadscore.training.data import build_training_set
from leadscore.training.selection import select_family
from leadscore.training.train import Fitted, fit_scorer
from tests.serving.conftest import SCORE_KEY, ClientFactory

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
LEADS = 5000
SIGNAL = {"industry", "region", "role_function", "buyer_role", "lead_source"}
WEIGHT = 0.35  # spread of the per-category effects (log-odds): a small signal, ROC AUC about 0.7


def synthetic() -> ModuleType:
    """benchmarks/synthetic.py (no package), imported from its folder as the scripts do."""
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(BENCHMARKS))
        return importlib.import_module("synthetic")


def linear_world(seed: int, base_rate: float, config: FeatureConfig) -> CrmData:
    """`LEADS` leads whose won outcome depends linearly (in log-odds) on five categories."""
    syn = synthetic()
    rng = np.random.default_rng(seed)
    raw = syn.synth_tables(rng, LEADS, LEADS // 4, config)  # few events: little noise
    leads = raw["leads"]
    account = raw["accounts"].set_index("account_id").loc[leads["account_id"]]
    contact = raw["contacts"].set_index("contact_id").reindex(leads["contact_id"])
    # one fixed effect per category of five nominal attributes: additive in the one-hot
    # columns, the logistic regression's own form (trees need a split per category)
    nominal = [(account, "industry"), (account, "region"), (contact, "role_function"),
               (contact, "buyer_role"), (leads, "source")]  # fmt: skip
    effects = np.random.default_rng(seed + 1000)
    signal = np.zeros(LEADS)
    for table, col in nominal:
        values = table[col].astype("string").fillna("(missing)").to_numpy()
        levels = sorted(set(values))
        weight = dict(zip(levels, effects.normal(0, WEIGHT, len(levels)), strict=True))
        signal += np.array([weight[v] for v in values])
    low, high = -10.0, 10.0  # the intercept that gives `base_rate`, by bisection
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if np.mean(1 / (1 + np.exp(-(mid + signal)))) < base_rate else (
            low, mid)  # fmt: skip
    won = rng.random(LEADS) < 1 / (1 + np.exp(-(mid + signal)))
    created = leads["created_at"].to_numpy()
    later = (rng.uniform(5, 80, LEADS) * 86_400).astype("timedelta64[s]").astype("timedelta64[ns]")
    nat = np.datetime64("NaT", "ns")
    raw["outcomes"] = pd.DataFrame({
        "lead_id": leads["lead_id"], "sql_at": np.full(LEADS, nat),
        "won_at": np.where(won, created + later, nat),
        "lost_at": np.where(won, nat, created + later),
    })  # fmt: skip
    return syn.to_crm(raw, config)


World = tuple[CrmData, Fitted]


@pytest.fixture(scope="module")
def worlds() -> dict[float, World]:
    """Each base rate's world and what training fitted on it (both families, the selection;
    no MLflow)."""
    config = load_feature_config()
    spec = build_spec(config)
    cfg = load_training_config()
    out = {}
    for seed, rate in ((11, 0.05), (12, 0.20), (13, 0.40)):
        crm = linear_world(seed, rate, config)
        ts = build_training_set(crm, spec, cfg)
        out[rate] = (crm, fit_scorer(ts, config, cfg, progress=lambda _: None))
    return out


# -- selection rule (fast) -----------------------------------------------------------------


def test_the_better_family_wins_and_the_simpler_within_the_tolerance() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    good = np.array([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])  # ROC AUC 1.0
    worse = np.array([0.1, 0.8, 0.2, 0.9, 0.3, 0.7])  # 6 of 9 pairs ordered: 0.6667
    cfg = SelectionConfig()
    assert select_family({"lightgbm": good, "logistic": worse}, y, cfg).family == "lightgbm"
    chosen = select_family({"lightgbm": worse, "logistic": good}, y, cfg)
    assert (chosen.family, chosen.margin) == ("logistic", pytest.approx(1 - 6 / 9))
    # within the tolerance the simpler family wins, and the margin says by how much it lost
    wide = SelectionConfig(tolerance=0.4)
    tie = select_family({"lightgbm": good, "logistic": worse}, y, wide)
    assert (tie.family, tie.margin) == ("logistic", pytest.approx(6 / 9 - 1))
    assert "simpler" in tie.why
    only = select_family({"lightgbm": worse}, y, SelectionConfig(families=("lightgbm",)))
    assert only.family == "lightgbm"


# -- the logistic family in the runtime (fast) ----------------------------------------------


def test_linear_design_matches_its_definition_and_contributions_add_up() -> None:
    # feature 0 nominal (codes 0, 1, missing); feature 1 numeric with a missing value
    x = np.array([[0, 1.0], [1, 3.0], [np.nan, np.nan], [1, 5.0]])
    model = LinearModel.learn(x, nominal=[0])
    kinds = [(c.feature, c.kind, c.code) for c in model.columns]
    assert kinds == [(0, "code", -1), (0, "code", 0), (0, "code", 1),
                     (1, "value", 0), (1, "missing", 0)]  # fmt: skip
    value = model.columns[3]
    assert value.fill == 3.0  # the median of 1, 3, 5; the missing row is filled with it
    filled = np.array([1.0, 3.0, 3.0, 5.0])
    assert value.center == pytest.approx(filled.mean()) and value.scale == pytest.approx(
        filled.std()
    )
    fitted = model.with_weights([0.5, -0.25, 1.0, 2.0, -1.0], intercept=0.1)
    row = np.array([1, 5.0])
    expected = 0.1 + 1.0 + 2.0 * (5.0 - filled.mean()) / filled.std() - 1.0 * (0 - 0.25) / np.sqrt(
        0.25 * 0.75)  # fmt: skip
    assert fitted.log_odds(row.reshape(1, -1))[0] == pytest.approx(expected)
    contrib, base = fitted.contributions(row)
    assert contrib.sum() + base == pytest.approx(expected, abs=1e-12)
    assert np.allclose(fitted.contributions_frame(x).sum(axis=1) + base, fitted.log_odds(x))
    again = LinearModel.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert np.array_equal(again.log_odds(x), fitted.log_odds(x))


@pytest.mark.slow
def test_a_logistic_model_directory_holds_no_booster_and_a_bad_one_is_refused(
    worlds: dict[float, World], tmp_path: Path
) -> None:
    fitted = worlds[0.20][1]
    scorer = fitted.scorer
    assert scorer.family == "logistic"
    saved = scorer.save(tmp_path / "m")
    assert not (saved / BOOSTER_FILE).exists()
    loaded = Scorer.from_dir(saved)
    rows = fitted.training_set.part("test").head(200)
    assert np.array_equal(loaded.raw_frame(rows), scorer.raw_frame(rows))
    data = json.loads((saved / "scorer.json").read_text())
    data["linear"]["columns"][0]["feature"] = 999
    (saved / "scorer.json").write_text(json.dumps(data))
    with pytest.raises(ScorerError, match=r"bad logistic model \(linear.columns\[0\]: feature 999"):
        Scorer.from_dir(saved)


# -- must show: logistic wins by construction; every tier populated at 5/20/40% --------------


@pytest.mark.slow
def test_logistic_wins_on_a_linear_world_and_every_tier_is_populated(
    worlds: dict[float, World],
) -> None:
    for rate, (_, fitted) in worlds.items():
        selection = fitted.selection
        assert selection.family == "logistic", (rate, selection)
        assert fitted.scorer.family == "logistic"  # what is stored: coefficients, no booster
        test = fitted.training_set.part("test")
        at_30 = test[test["lead_age_days"] == 30]
        assert at_30["label"].mean() == pytest.approx(rate, abs=0.04)
        tiers = fitted.scorer.score_frame(at_30)["tier"].value_counts()
        assert set(tiers.index) == {"A", "B", "C", "D"}, (rate, tiers.to_dict())
        # the shares the policy writes (A 20%, B 30%, C 30%, D 20%), on unseen leads
        assert tiers["A"] / len(at_30) == pytest.approx(0.2, abs=0.08)
        assert tiers["D"] / len(at_30) == pytest.approx(0.2, abs=0.1)


@pytest.mark.slow
def test_the_logistic_model_is_served_with_exact_reasons(
    worlds: dict[float, World], make_client: ClientFactory, tmp_path: Path
) -> None:
    crm, fitted = worlds[0.40]
    saved = fitted.scorer.save(tmp_path / "logistic")
    client = make_client(model_uri=str(saved))
    client.headers["X-API-Key"] = SCORE_KEY
    scorer = Scorer.from_dir(saved)
    test = fitted.training_set.part("test")
    ids = test["lead_id"].drop_duplicates().head(12).tolist()
    created = crm.leads.set_index("lead_id").loc[ids, "created_at"]
    bodies = lead_bodies(crm, load_feature_config(), ids, list(created + pd.Timedelta(days=30)))
    parse = payload_model(load_feature_config())
    seen_bands = 0
    for body in bodies:
        response = client.post("/v1/score", json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        payload = parse.model_validate(body)
        row = scorer.feature_row(*payload.records(), payload.as_of_or_now())
        assert data["mql_probability"] == pytest.approx(scorer.score_row(row)["mql_probability"])
        contrib, base = scorer.contributions(row)
        assert scorer.linear is not None
        log_odds = float(scorer.linear.log_odds(scorer.encoding.row(row).reshape(1, -1))[0])
        assert contrib.sum() + base == pytest.approx(log_odds, abs=1e-9)
        total = sum(data["score_by_group"].values())
        assert total == pytest.approx(data["mql_probability"] - data["reasons"]["base_probability"],
                                      abs=1e-9)  # fmt: skip
        named = [r["feature"] for r in data["reasons"]["positive"] + data["reasons"]["negative"]]
        seen_bands += bool(SIGNAL & set(named))
    assert seen_bands >= len(bodies) // 2  # the features that carry the signal give reasons
