"""Quality on an unseen world: at least the flat-table yardstick, on leads the model never saw.

Protocol (issue: training): train on a bundle of N leads, generate a larger bundle of the same
seed and difficulty (its first N ids repeat the training leads), score the ids beyond N at 30
days, and compare with a default LightGBM trained on leadforge's own flat task table.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.features.config import load_feature_config
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.training.config import load_training_config
from leadscore.training.evaluate import ece
from leadscore.training.train import train_model
from tests.conftest import _generate

pytestmark = pytest.mark.slow

SEED, TRAIN_N, EVAL_N = 7, 3000, 6000
TASK = "converted_within_90_days"
FLAT_DROP = {"current_stage", "is_sql", "total_touches_all", "account_id", "contact_id",
             "lead_id", "lead_created_at", TASK}  # fmt: skip


def _flat(bundle: Path) -> pd.DataFrame:
    task = bundle / "tasks" / TASK
    return pd.concat([pd.read_parquet(task / f"{s}.parquet") for s in ("train", "valid", "test")])


def _matrix(frame: pd.DataFrame, cols: list[str], ref: pd.DataFrame | None = None) -> pd.DataFrame:
    x = frame[cols].copy()
    for c in cols:
        if str(x[c].dtype) in ("string", "object", "str"):
            cats = None if ref is None else ref[c].cat.categories
            x[c] = pd.Categorical(x[c], categories=cats)
        else:
            x[c] = x[c].astype(float)
    return x


def flat_baseline(train: Path, evaluate: Path, lead_ids: pd.Index) -> pd.Series:
    """The yardstick's scores (a default LightGBM on the flat task table) for `lead_ids`."""
    a, b = _flat(train), _flat(evaluate).set_index("lead_id").loc[lead_ids].reset_index()
    cols = [c for c in a.columns if c not in FLAT_DROP]
    xa = _matrix(a, cols)
    model = lgb.LGBMClassifier(verbose=-1).fit(xa, a[TASK].astype(int))
    return pd.Series(model.predict_proba(_matrix(b, cols, xa))[:, 1], index=lead_ids)


def test_unseen_leads_score_at_least_the_flat_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    train = _generate(tmp_path / "train", "research_instructor", seed=SEED, leads=TRAIN_N)
    evaluate = _generate(tmp_path / "eval", "research_instructor", seed=SEED, leads=EVAL_N)
    config = load_feature_config()
    result = train_model(load_source(train, config), config, load_training_config())

    crm = load_source(evaluate, config)
    seen = set(pd.read_parquet(train / "tables" / "leads.parquet")["lead_id"])
    rows = snapshot(crm, result.scorer.spec, as_of_after_creation(crm.leads, 30))
    outcomes = crm.outcomes.set_index("lead_id")
    closed = (outcomes["won_at"] <= rows["as_of"].to_numpy()) | (
        outcomes["lost_at"] <= rows["as_of"].to_numpy()
    )
    rows = rows[~rows["lead_id"].isin(seen) & ~closed.reindex(rows["lead_id"]).to_numpy()]
    scores = result.scorer.score_frame(rows).set_index("lead_id")["mql_probability"]
    label = outcomes.loc[scores.index, "won_at"].notna() & (
        outcomes.loc[scores.index, "won_at"]
        <= crm.leads.set_index("lead_id").loc[scores.index, "created_at"] + pd.Timedelta(days=90)
    )
    ours = roc_auc_score(label, scores)
    yardstick = roc_auc_score(label, flat_baseline(train, evaluate, scores.index))
    print(f"unseen leads {len(scores)}: ours {ours:.4f}, flat {yardstick:.4f}, "
          f"ECE {ece(label.to_numpy().astype(int), scores.to_numpy()):.4f}")  # fmt: skip
    assert ours >= yardstick - 0.02
    assert ours < 0.85  # far above the yardstick on this tier would mean leakage
