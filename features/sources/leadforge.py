"""leadforge bundles (both exposure modes) as canonical tables.

* touches, web sessions, sales activities and opportunities all become dated events
  (opportunity -> `opportunity_opened` at its creation, with its estimated ACV as value);
* `research_instructor` bundles hold the full 90-day history, so the cutoff is the snapshot's
  job; their outcomes are dated: SQL when the opportunity opened (leadforge opens one when a
  lead is accepted as SQL), won/lost at the opportunity's close;
* `student_public` bundles hold events up to day 30 only and no outcome dates; the task
  split's `converted_within_90_days` is carried as an undated final label;
* current state (lead `current_stage`, `is_sql`, opportunity `stage`, close outcome) goes to
  the outcomes table, never to leads or events, so no feature can read it;
* observation end = last lead creation + the manifest's label window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from leadscore.features.config import FeatureConfig
from leadscore.features.contract import CrmData, validate
from leadscore.features.schema import DataContractError

MODES = ("research_instructor", "student_public")
TASK = "converted_within_90_days"


def is_leadforge_bundle(root: Path) -> bool:
    """A directory with a leadforge manifest."""
    manifest = root / "manifest.json"
    return manifest.is_file() and "recipe_id" in manifest.read_text()


def _table(root: Path, manifest: dict[str, Any], name: str) -> pd.DataFrame:
    entry = manifest.get("tables", {}).get(name)
    path = root / (entry["file"] if entry else f"tables/{name}.parquet")
    if not path.is_file():
        raise DataContractError([f"{root}: leadforge table {name!r} missing ({path})"])
    return pd.read_parquet(path)


def _events(root: Path, manifest: dict[str, Any]) -> pd.DataFrame:
    touches = _table(root, manifest, "touches")
    sessions = _table(root, manifest, "sessions")
    activities = _table(root, manifest, "sales_activities")
    opps = _table(root, manifest, "opportunities")
    parts = [
        pd.DataFrame({
            "event_id": touches["touch_id"], "lead_id": touches["lead_id"],
            "timestamp": touches["touch_timestamp"], "type": "touch",
            "subtype": touches["touch_type"], "channel": touches["touch_channel"],
            "direction": touches["touch_direction"],
        }),
        pd.DataFrame({
            "event_id": sessions["session_id"], "lead_id": sessions["lead_id"],
            "timestamp": sessions["session_timestamp"], "type": "web_session",
            "subtype": sessions["session_type"], "channel": "web", "direction": "inbound",
            "page_views": sessions["page_views"],
            "pricing_page_views": sessions["pricing_page_views"],
            "demo_page_views": sessions["demo_page_views"],
            "duration_seconds": sessions["session_duration_seconds"],
        }),
        pd.DataFrame({
            "event_id": activities["activity_id"], "lead_id": activities["lead_id"],
            "timestamp": activities["activity_timestamp"], "type": "sales_activity",
            "subtype": activities["activity_type"], "channel": "sales", "direction": "outbound",
            "outcome": activities["activity_outcome"],
        }),
        pd.DataFrame({
            "event_id": opps["opportunity_id"], "lead_id": opps["lead_id"],
            "timestamp": opps["created_at"], "type": "opportunity_opened", "channel": "sales",
            "value": opps["estimated_acv"],
        }),
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def _outcomes(root: Path, manifest: dict[str, Any], leads: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"lead_id": leads["lead_id"]})
    for col in ("current_stage", "is_sql"):
        if col in leads.columns:
            out[col] = leads[col].to_numpy()
    opps = _table(root, manifest, "opportunities")
    if "close_outcome" in opps.columns:  # research_instructor: dated outcomes
        by_lead = opps.sort_values("created_at").drop_duplicates("lead_id").set_index("lead_id")
        out["sql_at"] = out["lead_id"].map(by_lead["created_at"])
        closed = by_lead["closed_at"]
        out["won_at"] = out["lead_id"].map(closed.where(by_lead["close_outcome"] == "closed_won"))
        out["lost_at"] = out["lead_id"].map(closed.where(by_lead["close_outcome"] == "closed_lost"))
        out["opportunity_stage"] = out["lead_id"].map(by_lead["stage"])
    else:
        task = root / "tasks" / TASK
        labels = pd.concat(
            [pd.read_parquet(task / f"{s}.parquet", columns=["lead_id", TASK])
             for s in ("train", "valid", "test") if (task / f"{s}.parquet").is_file()]
        )  # fmt: skip
        out[TASK] = out["lead_id"].map(labels.set_index("lead_id")[TASK])
        stage = opps.drop_duplicates("lead_id").set_index("lead_id")["stage"]
        out["opportunity_stage"] = out["lead_id"].map(stage)
    return out


def load_leadforge(root: Path, config: FeatureConfig) -> CrmData:
    """Load a leadforge bundle directory (either exposure mode) and validate it."""
    manifest = json.loads((root / "manifest.json").read_text())
    mode = manifest.get("exposure_mode")
    if mode not in MODES:
        raise DataContractError(
            [f"{root}/manifest.json: exposure_mode {mode!r} not supported; expected {MODES}"]
        )
    accounts = _table(root, manifest, "accounts").rename(
        columns={"estimated_revenue_band": "revenue_band", "created_at": "account_created_at"}
    )
    contacts = _table(root, manifest, "contacts").rename(
        columns={"created_at": "contact_created_at"}
    )
    raw_leads = _table(root, manifest, "leads")
    leads = raw_leads.rename(columns={"lead_created_at": "created_at", "lead_source": "source",
                                      "owner_rep_id": "owner"})  # fmt: skip
    leads = leads.drop(
        columns=[c for c in ("current_stage", "is_sql", TASK, "conversion_timestamp") if c in leads]
    )
    raw = {
        "accounts": accounts,
        "contacts": contacts,
        "leads": leads,
        "events": _events(root, manifest),
        "outcomes": _outcomes(root, manifest, raw_leads),
    }
    tables = validate(raw, config, {name: f"{root} [{name}]" for name in raw})
    created = tables["leads"]["created_at"]
    window = int(manifest.get("label_window_days") or manifest.get("horizon_days") or 90)
    dated = mode == "research_instructor"
    notes = [
        f"leadforge {mode} bundle, seed {manifest.get('seed')}, "
        f"difficulty {manifest.get('difficulty')}, {len(tables['leads'])} leads"
    ]
    if not dated:
        notes.append(
            "student_public: events end at day 30 and outcomes carry no dates (only the final "
            f"{TASK} label); training needs a research_instructor bundle"
        )
    return CrmData(
        accounts=tables["accounts"],
        contacts=tables["contacts"],
        leads=tables["leads"],
        events=tables["events"],
        outcomes=tables["outcomes"],
        observation_end=created.max() + pd.Timedelta(days=window),
        has_outcome_dates=dated,
        source=f"leadforge:{mode}:{root}",
        notes=notes,
    )
