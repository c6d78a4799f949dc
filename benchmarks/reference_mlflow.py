"""The serving benchmark's leads, its reference, and the agreement checks.

The leads: bodies of generated leads with about 20 events each, as ``leadscore data lead``
writes them (:func:`pick_bodies`).

The reference is what a user would otherwise deploy: the same LightGBM booster logged with
MLflow's standard LightGBM flavor and served by ``mlflow models serve``, fed each lead's flat
encoded feature row (``dataframe_split``; categories as integer codes, missing as null). Each
lead is also scored in-process with the served model (the one validator, the one-lead feature
builder, ``Scorer.score_row``): the reference must return exactly our uncalibrated probability,
and the API's ``mql_probability`` must be the calibrator applied to it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.bodies import lead_bodies
from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.payload import payload_model, validate_lead
from leadscore.features.sources import load_source

EXPERIMENT = "bench-serving-reference"
TOLERANCE = 1e-12  # the same booster on the same float64 input: equal up to JSON round trips


@dataclass(frozen=True)
class Expected:
    """One lead as both servers must see it: its body, flat encoded row and raw probability."""

    lead_id: str
    body: bytes  # POST /v1/score
    reference_body: bytes  # POST /invocations (dataframe_split, one row)
    raw_probability: float  # the booster's uncalibrated output (Scorer.score_row)
    mql_probability: float  # the calibrator applied to it
    events: int


def pick_bodies(
    bundle: Path, n: int, seed: int, as_of_days: float, events: int, slack: int
) -> list[dict[str, Any]]:
    """`n` API bodies (``leadscore.features.bodies.lead_bodies``) of leads drawn at random among
    those with `events` +- `slack` events up to created + `as_of_days` (the slack widens while
    too few have)."""
    config = load_feature_config()
    crm = load_source(bundle, config)
    as_of = crm.leads.set_index("lead_id")["created_at"] + pd.Timedelta(days=as_of_days)
    ev = crm.events[crm.events["timestamp"] <= crm.events["lead_id"].map(as_of)]
    counts = ev.groupby("lead_id").size().reindex(as_of.index, fill_value=0)
    while True:
        ok = counts[(counts - events).abs() <= slack]
        if len(ok) >= n or slack > events:
            break
        slack += 1
    rng = np.random.default_rng(seed)
    chosen = [str(i) for i in rng.choice(ok.index.to_numpy(), size=min(n, len(ok)), replace=False)]
    return lead_bodies(crm, config, chosen, [as_of[i] for i in chosen])


def reference_row(values: np.ndarray) -> list[float | None]:
    """An encoded feature row as JSON values: NaN (missing, unseen category) becomes null."""
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


def reference_payload(names: Sequence[str], rows: Sequence[np.ndarray]) -> dict[str, Any]:
    """The ``dataframe_split`` body MLflow's scoring server reads."""
    return {"dataframe_split": {"columns": list(names), "data": [reference_row(r) for r in rows]}}


def expected_outputs(scorer: Any, bodies: Sequence[Mapping[str, Any]]) -> list[Expected]:
    """Validate each body as the API does, build its feature row and score it in-process."""
    config = FeatureConfig.model_validate(scorer.meta.get("feature_config") or {})
    model = payload_model(config)
    names = scorer.encoding.names
    out = []
    for body in bodies:
        parsed = validate_lead(model, body)
        row = scorer.feature_row(parsed.lead, parsed.account, parsed.contact, parsed.events,
                                 parsed.as_of)  # fmt: skip
        raw = float(scorer.score_row(row)["raw_probability"])
        encoded = scorer.encoding.row(row)
        out.append(
            Expected(
                lead_id=str(row["lead_id"]),
                body=json.dumps(body).encode(),
                reference_body=json.dumps(reference_payload(names, [encoded])).encode(),
                raw_probability=raw,
                mql_probability=float(scorer.calibrator(np.array([raw]))[0]),
                events=len(parsed.events),
            )
        )
    return out


def reference_predictions(answers: Sequence[Any]) -> list[float | None]:
    """The one prediction of each ``/invocations`` answer (None when missing)."""
    out: list[float | None] = []
    for a in answers:
        preds = a.get("predictions") if isinstance(a, dict) else None
        value = preds[0] if isinstance(preds, list) and len(preds) == 1 else None
        out.append(float(value) if isinstance(value, int | float) else None)
    return out


def reference_problems(
    expected: Sequence[Expected], got: Sequence[float | None], tol: float = TOLERANCE
) -> list[str]:
    """Leads where the reference's output is not our uncalibrated probability."""
    problems = []
    for e, g in zip(expected, got, strict=True):
        if g is None or not math.isclose(g, e.raw_probability, rel_tol=0.0, abs_tol=tol):
            problems.append(
                f"reference != ours (uncalibrated) for {e.lead_id}: "
                f"mlflow {g!r}, leadscore {e.raw_probability!r}"
            )
    return problems


def api_problems(
    expected: Sequence[Expected], got: Sequence[Mapping[str, Any] | None], tol: float = TOLERANCE
) -> list[str]:
    """Leads where the API's answer is not the calibrator applied to our raw probability
    (or lacks the reasons and criteria it was asked for)."""
    problems = []
    for e, g in zip(expected, got, strict=True):
        if g is None:
            problems.append(f"API gave no answer for {e.lead_id}")
            continue
        p = g.get("mql_probability")
        if g.get("lead_id") != e.lead_id:
            problems.append(f"API answered {g.get('lead_id')!r} for {e.lead_id}")
        elif not isinstance(p, float) or not math.isclose(p, e.mql_probability, rel_tol=0.0,
                                                          abs_tol=tol):  # fmt: skip
            problems.append(
                f"API mql_probability != calibrator(raw) for {e.lead_id}: "
                f"API {p!r}, in-process {e.mql_probability!r}"
            )
        elif not g.get("reasons") or not (g.get("sql_criteria") or {}).get("criteria"):
            problems.append(f"API answer for {e.lead_id} lacks reasons or SQL criteria")
    return problems


def log_reference(tracking_uri: str, root: Path, booster: Any, names: Sequence[str]) -> str:
    """Log `booster` with MLflow's LightGBM flavor into the store at `tracking_uri` (artifacts
    under `root`); its model URI."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, DataType, Schema

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            EXPERIMENT, artifact_location=(root / "reference-artifacts").as_uri()
        )
    )
    signature = ModelSignature(
        inputs=Schema([ColSpec(DataType.double, n) for n in names]),
        outputs=Schema([ColSpec(DataType.double)]),
    )
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.lightgbm.log_model(
            booster, name="reference", signature=signature,
            pip_requirements=[f"lightgbm=={lgb.__version__}"],  # skip requirement inference
        )  # fmt: skip
    return str(info.model_uri)
