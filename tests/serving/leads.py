"""Lead bodies for API tests, and a toy model trained on them in well under a second.

The toy model is a real :class:`~leadscore.serving.runtime.Scorer` (LightGBM booster with monotone
constraints, categorical features, sigmoid calibrator, per-source thresholds) saved as a model
directory, so the fast API tests run the same code paths as a registered model.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from leadscore.features.config import load_feature_config
from leadscore.features.online import OnlineBuilder
from leadscore.features.payload import payload_model
from leadscore.features.spec import build_spec
from leadscore.serving.examples import synthetic_example
from leadscore.serving.runtime import Calibrator, Encoding, Scorer, Thresholds, TierCuts

AS_OF = datetime(2024, 3, 1, 9, 0, 0)
INDUSTRIES = ["manufacturing", "logistics", "professional_services", "healthcare_non_clinical"]
REGIONS = ["US", "UK", "DE"]
EMPLOYEES = ["50-199", "200-499", "500-999", "1000-1999", "2000+"]
REVENUES = ["$1M-$10M", "$10M-$50M", "$50M-$200M", "$200M+"]
SENIORITY = ["manager", "director", "vp", "c_suite"]
ROLES = [("vp_finance", "economic_buyer"), ("ap_manager", "champion"),
         ("procurement_manager", "end_user")]  # fmt: skip
SOURCES = ["inbound_marketing", "sdr_outbound", "partner_referral"]
EVENT_KINDS = [
    ("touch", "email", "outbound", None), ("touch", "webinar", "inbound", None),
    ("touch", "content_download", "inbound", None),
    ("web_session", "pricing_page", "inbound", None),
    ("web_session", "demo_page", "inbound", None), ("web_session", "website", "inbound", None),
    ("sales_activity", "call", "outbound", "no_answer"),
    ("sales_activity", "meeting", "outbound", "meeting_set"),
    ("sales_activity", "demo", "outbound", "demo_completed"),
]  # fmt: skip


def iso(moment: datetime) -> str:
    """ISO-8601 text of a naive UTC moment."""
    return moment.isoformat()


def random_body(rng: random.Random, i: int, as_of: datetime = AS_OF) -> dict[str, Any]:
    """A plausible lead body: fit attributes, 0-25 events within its age, as_of set."""
    age = rng.choice([1, 3, 7, 14, 21, 30])
    created = as_of - timedelta(days=age)
    role, buyer = rng.choice(ROLES)
    events = []
    for _ in range(rng.randint(0, 25)):
        kind, subtype, direction, outcome = rng.choice(EVENT_KINDS)
        at = created + timedelta(seconds=rng.randint(0, age * 86_400))
        event: dict[str, Any] = {"timestamp": iso(at), "type": kind, "subtype": subtype,
                                 "direction": direction}  # fmt: skip
        if outcome:
            event["outcome"] = outcome
        if kind == "web_session":
            pricing = rng.randint(1, 3) if subtype == "pricing_page" else 0
            demo = rng.randint(1, 2) if subtype == "demo_page" else 0
            event |= {"page_views": rng.randint(1, 8), "duration_seconds": rng.randint(30, 900),
                      "pricing_page_views": pricing, "demo_page_views": demo}  # fmt: skip
        events.append(event)
    return {
        "lead": {"lead_id": f"lead-{i:05d}", "created_at": iso(created),
                 "source": rng.choice(SOURCES)},
        "account": {"account_id": f"acct-{i:05d}", "company_name": f"Company {i}",
                    "industry": rng.choice(INDUSTRIES), "region": rng.choice(REGIONS),
                    "employee_band": rng.choice(EMPLOYEES), "revenue_band": rng.choice(REVENUES),
                    "process_maturity_band": rng.choice(["low", "medium", "high"])},
        "contact": {"contact_id": f"cnt-{i:05d}", "role_function": role,
                    "seniority": rng.choice(SENIORITY), "buyer_role": buyer,
                    "email_domain_type": rng.choice(["corporate", "personal"])},
        "events": events,
        "as_of": iso(as_of),
    }  # fmt: skip


def example() -> dict[str, Any]:
    """The synthetic example lead (about 20 events), a fresh copy."""
    return copy.deepcopy(synthetic_example())


def build_toy_model(directory: Path, n: int = 600, seed: int = 5) -> Path:
    """Train a small scorer on random leads (label driven by pricing views and meetings)."""
    config = load_feature_config()
    spec = build_spec(config)
    builder = OnlineBuilder(spec)
    model = payload_model(config)
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        payload = model.model_validate(random_body(rng, i))
        lead, account, contact, events = payload.records()
        rows.append(builder.row(lead, account, contact, events, payload.as_of_or_now()))
    frame = pd.DataFrame(rows)
    encoding = Encoding.learn(spec, frame)
    x = encoding.frame(frame)
    signal = (
        0.6 * frame["pricing_page_views"].fillna(0) + 1.2 * frame["meetings_set"].fillna(0)
        + 0.5 * (frame["seniority"].isin(["vp", "c_suite"])) - 2.5
    ).to_numpy()  # fmt: skip
    noise = np.random.default_rng(seed).normal(0, 0.7, n)
    y = (signal + noise > 0).astype(int)
    params = {
        "objective": "binary", "num_threads": 1, "verbose": -1, "min_data_in_leaf": 10,
        "num_leaves": 7, "learning_rate": 0.1, "seed": seed,
        "monotone_constraints": [int(f.monotone) for f in spec],
        "monotone_constraints_method": "advanced",
    }  # fmt: skip
    categorical = [encoding.names.index(c) for c in encoding.categorical]
    data = lgb.Dataset(x, y, feature_name=list(encoding.names), categorical_feature=categorical)
    booster = lgb.train(params, data, num_boost_round=40)
    scorer = Scorer(
        spec=spec,
        encoding=encoding,
        booster=booster,
        calibrator=Calibrator("sigmoid", a=0.9, b=-0.1),
        thresholds=Thresholds(
            policy={"kind": "capacity", "value": 0.2, "per_source_min_positives": 50},
            global_threshold=0.5,
            by_source={"inbound_marketing": 0.45},
        ),
        tiers=TierCuts(0.2, 0.08),
        meta={
            "model_name": "toy-scoring", "version": "7", "alias": "champion",
            "trained_at": "2024-03-01T00:00:00+00:00", "target": "won", "horizon_days": 90,
            "trained_ages": [1.0, 3.0, 7.0, 14.0, 21.0, 30.0], "reference_age": 30.0,
            "data_window": {"created_from": "2024-01-01", "created_to": "2024-02-29"},
            "feature_config": config.model_dump(mode="json"),
            "test_metrics": {"test_roc_auc": 0.81, "test_brier": 0.12},
        },
    )
    return scorer.save(directory)


def bundle_bodies(bundle: Path, n: int, as_of: str) -> list[dict[str, Any]]:
    """The first `n` leads of a source as API bodies, with their history up to `as_of`."""
    from leadscore.features.bodies import lead_bodies
    from leadscore.features.sources import load_source

    config = load_feature_config()
    crm = load_source(bundle, config)
    ids = crm.leads["lead_id"].head(n).tolist()
    return lead_bodies(crm, config, ids, [as_of] * len(ids))


def relabelled(body: dict[str, Any]) -> dict[str, Any]:
    """The same lead under other ids and company name, events reversed: must score the same."""
    out = json.loads(json.dumps(body))
    out["lead"]["lead_id"] = "renamed-lead"
    out["account"]["account_id"] = "renamed-account"
    out["account"]["company_name"] = "Another Name Entirely GmbH"
    out["contact"]["contact_id"] = "renamed-contact"
    # ids that refer to them are renamed with them (the validator refuses contradictions)
    for record, key, new in ((out["lead"], "account_id", "renamed-account"),
                             (out["lead"], "contact_id", "renamed-contact"),
                             (out["contact"], "account_id", "renamed-account")):  # fmt: skip
        if key in record:
            record[key] = new
    out["events"] = list(reversed(out["events"]))
    for i, event in enumerate(out["events"]):
        event["event_id"] = f"other-{i}"
    return out
