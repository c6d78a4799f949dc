"""Throughput of the point-in-time snapshot builder, as ratios to references timed in the same run.

Synthesises canonical CRM tables with numpy (leadforge is too slow at this size), validates
them, then times:

* ``features.snapshot.snapshot`` at ``as_of = created_at + 30 d`` over every lead, for the full
  spec and for its event features alone;
* the same event features (count, sum, max, exists, days_since_*) over the same cutoff and
  windows in DuckDB (one GROUP BY lead with conditional aggregates, SQL generated from the
  spec) and in a plain pandas merge + groupby; all three must agree value for value;
* the one-lead builder ``OnlineBuilder.row`` on plain dicts (20 events, ISO-8601 timestamps)
  against ``snapshot`` on a one-lead ``CrmData``, and that both give the same row.

Absolute numbers depend on the machine; the ratios are what to compare between runs. Only the
agreement of the outputs is judged: the script exits 1 when the builders disagree.

    python benchmarks/bench_snapshot.py                  # 100k leads, 1M events
    python benchmarks/bench_snapshot.py --smoke          # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData, validate
from leadscore.features.online import OnlineBuilder
from leadscore.features.schema import UnseenCategoryWarning
from leadscore.features.snapshot import DAY_NS, as_of_after_creation, snapshot
from leadscore.features.spec import Feature, FeatureSpec, build_spec

SEED = 20240601
AS_OF_DAYS = 30
EVENT_HORIZON_DAYS = 60
CREATED_SPAN_DAYS = 30
ONE_LEAD_EVENTS = 20
ONE_LEAD_POOL = 64
START = np.datetime64("2024-03-01T00:00:00", "ns")

# Kinds the references compute; attributes, ratios, differences and `latest` are left out.
REFERENCE_KINDS = frozenset(
    {"count", "sum", "max", "exists", "days_since_last", "days_since_first"}
)

# Vocabularies: (values, probabilities). None is a missing value.
Vocab = tuple[tuple[str | None, ...], tuple[float, ...]]

INDUSTRIES = ("logistics", "manufacturing", "retail", "healthcare", "software", "construction")
REGIONS = ("US", "UK", "DACH", "Nordics", "APAC")
LEAD_SOURCES = ("inbound_marketing", "sdr_outbound", "partner_referral", "paid_search", "event")
ROLE_FUNCTIONS = ("vp_finance", "ap_manager", "it_director", "controller", "procurement_lead")
BUYER_ROLES = ("economic_buyer", "champion", "technical_evaluator", "end_user")
EMAIL_DOMAIN_TYPES = ("corporate", "personal", "unknown")

EVENT_TYPES: Vocab = (
    ("touch", "web_session", "sales_activity", "opportunity_opened"),
    (0.45, 0.34, 0.19, 0.02),
)
SUBTYPES: dict[str, Vocab] = {
    "touch": (
        ("email", "call", "linkedin_message", "content_download", "webinar", "ad_click"),
        (0.34, 0.14, 0.14, 0.16, 0.08, 0.14),
    ),
    "web_session": (
        ("pricing_page", "demo_page", "blog", "docs", "homepage"),
        (0.15, 0.10, 0.30, 0.20, 0.25),
    ),
    "sales_activity": (("call", "email", "meeting", "demo"), (0.36, 0.34, 0.20, 0.10)),
}
CHANNELS: dict[str, Vocab] = {
    "touch": (("email", "phone", "linkedin", "web", "event"), (0.4, 0.15, 0.15, 0.2, 0.1)),
    "web_session": (("organic", "paid", "direct", "referral"), (0.4, 0.2, 0.3, 0.1)),
    "sales_activity": (("phone", "email", "video"), (0.4, 0.4, 0.2)),
}
DIRECTIONS: dict[str, Vocab] = {
    "touch": (("inbound", "outbound"), (0.35, 0.65)),
    "sales_activity": (("outbound", "inbound"), (0.85, 0.15)),
}
OUTCOMES: dict[str, Vocab] = {
    "touch": (("opened", "clicked", "replied", None), (0.3, 0.15, 0.05, 0.5)),
    "sales_activity": (
        ("connected", "no_answer", "left_voicemail", "meeting_set", "demo_completed", "replied"),
        (0.25, 0.25, 0.15, 0.12, 0.08, 0.15),
    ),
}


# ---------------------------------------------------------------------------------------------
# synthetic canonical tables


def _ids(prefix: str, start: int, n: int) -> list[str]:
    """`n` ids like ``L0000017`` from `start`."""
    return [f"{prefix}{i:07d}" for i in range(start, start + n)]


def _draw(rng: np.random.Generator, vocab: Vocab, n: int) -> np.ndarray:
    """`n` values drawn from a vocabulary, as an object array (None for missing)."""
    values = np.array(vocab[0], dtype=object)
    return values[rng.choice(len(values), size=n, p=np.array(vocab[1]) / sum(vocab[1]))]


def _uniform(values: Sequence[str]) -> Vocab:
    """A vocabulary with equal probabilities."""
    return tuple(values), tuple(1.0 for _ in values)


def _per_type(
    rng: np.random.Generator, types: np.ndarray, table: Mapping[str, Vocab]
) -> np.ndarray:
    """One column whose vocabulary depends on the event type (None for other types)."""
    out = np.full(len(types), None, dtype=object)
    for etype, vocab in table.items():
        rows = np.flatnonzero(types == etype)
        out[rows] = _draw(rng, vocab, len(rows))
    return out


def _order(config: FeatureConfig, qualified: str, fallback: Sequence[str]) -> tuple[str, ...]:
    """The declared band order of a column, or `fallback` when the config declares none."""
    return config.order_of(qualified) or tuple(fallback)


def synth_entities(
    rng: np.random.Generator, n_leads: int, config: FeatureConfig
) -> dict[str, pd.DataFrame]:
    """Raw accounts, contacts, leads and outcomes for `n_leads` leads (no events)."""
    n_accounts = max(1, n_leads // 2)
    n_contacts = max(1, (n_leads * 9) // 10)
    accounts = pd.DataFrame(
        {
            "account_id": _ids("A", 0, n_accounts),
            "industry": _draw(rng, _uniform(INDUSTRIES), n_accounts),
            "region": _draw(rng, ((*REGIONS, None), (0.4, 0.2, 0.15, 0.1, 0.14, 0.01)), n_accounts),
            "employee_band": _draw(
                rng,
                _uniform(_order(config, "account.employee_band", ("small", "large"))),
                n_accounts,
            ),
            "revenue_band": _draw(
                rng, _uniform(_order(config, "account.revenue_band", ("low", "high"))), n_accounts
            ),
            "process_maturity_band": _draw(
                rng,
                _uniform(_order(config, "account.process_maturity_band", ("low", "high"))),
                n_accounts,
            ),
        }
    )
    contact_account = rng.integers(0, n_accounts, n_contacts)
    contacts = pd.DataFrame(
        {
            "contact_id": _ids("C", 0, n_contacts),
            "account_id": accounts["account_id"].to_numpy()[contact_account],
            "role_function": _draw(rng, _uniform(ROLE_FUNCTIONS), n_contacts),
            "seniority": _draw(
                rng, _uniform(_order(config, "contact.seniority", ("junior", "senior"))), n_contacts
            ),
            "buyer_role": _draw(rng, _uniform(BUYER_ROLES), n_contacts),
            "email_domain_type": _draw(rng, (EMAIL_DOMAIN_TYPES, (0.8, 0.15, 0.05)), n_contacts),
        }
    )
    lead_contact = rng.integers(0, n_contacts, n_leads)
    no_contact = rng.random(n_leads) < 0.05  # some leads arrive without a contact
    contact_ids = contacts["contact_id"].to_numpy(dtype=object)[lead_contact]
    contact_ids[no_contact] = None
    lead_account = contact_account[lead_contact]
    lead_account[no_contact] = rng.integers(0, n_accounts, int(no_contact.sum()))
    created_s = np.sort(rng.integers(0, CREATED_SPAN_DAYS * 86_400, n_leads))
    leads = pd.DataFrame(
        {
            "lead_id": _ids("L", 0, n_leads),
            "account_id": accounts["account_id"].to_numpy()[lead_account],
            "contact_id": contact_ids,
            "created_at": START + created_s.astype("timedelta64[s]").astype("timedelta64[ns]"),
            "source": _draw(rng, _uniform(LEAD_SOURCES), n_leads),
        }
    )
    nat = np.full(n_leads, np.datetime64("NaT", "ns"))
    outcomes = pd.DataFrame(
        {"lead_id": leads["lead_id"], "sql_at": nat, "won_at": nat, "lost_at": nat}
    )
    return {"accounts": accounts, "contacts": contacts, "leads": leads, "outcomes": outcomes}


def synth_events(
    rng: np.random.Generator,
    lead_ids: np.ndarray,
    created: np.ndarray,
    per_lead: np.ndarray,
    horizon_days: float,
    id_prefix: str = "E",
) -> pd.DataFrame:
    """Raw events: `per_lead[i]` events of lead i, dated within `horizon_days` of its creation.

    Engagement decays after creation (exponential offsets folded into the horizon), so the
    first, last and previous weeks hold different amounts.
    """
    pos = np.repeat(np.arange(len(lead_ids)), per_lead)
    n = len(pos)
    horizon_s = int(horizon_days * 86_400)
    offset_s = (rng.exponential(15 * 86_400, n) % horizon_s).astype(np.int64)
    types = _draw(rng, EVENT_TYPES, n)
    session = types == "web_session"
    sales = types == "sales_activity"
    opp = types == "opportunity_opened"
    subtypes = _per_type(rng, types, SUBTYPES)

    page_views = np.where(session, 1 + rng.poisson(3, n), np.nan)
    on_pricing = (subtypes == "pricing_page") * (1 + rng.poisson(1.0, n))
    on_demo = (subtypes == "demo_page") * (1 + rng.poisson(0.5, n))
    pricing = np.where(session, rng.poisson(0.2, n) + on_pricing, np.nan)
    demo = np.where(session, rng.poisson(0.1, n) + on_demo, np.nan)
    meeting = sales & np.isin(subtypes, ["meeting", "demo"])
    duration = np.where(session, np.round(rng.exponential(180, n)), np.nan)
    duration = np.where(meeting, 900 * rng.integers(1, 5, n), duration)
    duration[session & (rng.random(n) < 0.02)] = np.nan  # tracking gaps
    value = np.where(opp, np.round(rng.lognormal(10.5, 0.8, n), -2), np.nan)

    return pd.DataFrame(
        {
            "event_id": _ids(id_prefix, 0, n),
            "lead_id": lead_ids[pos],
            "timestamp": created[pos] + offset_s.astype("timedelta64[s]").astype("timedelta64[ns]"),
            "type": types,
            "subtype": subtypes,
            "channel": _per_type(rng, types, CHANNELS),
            "direction": _per_type(rng, types, DIRECTIONS),
            "outcome": _per_type(rng, types, OUTCOMES),
            "value": value,
            "page_views": page_views,
            "pricing_page_views": pricing,
            "demo_page_views": demo,
            "duration_seconds": duration,
        }
    )


def spread(rng: np.random.Generator, n_events: int, n_leads: int) -> np.ndarray:
    """Exactly `n_events` spread over `n_leads` leads, Poisson-like (multinomial)."""
    return rng.multinomial(n_events, np.full(n_leads, 1.0 / n_leads))


def uncovered_filter_values(spec: FeatureSpec) -> list[str]:
    """Spec filter values the synthetic events never take (their features would be all zero)."""
    generated: dict[str, set[Any]] = {
        "type": set(EVENT_TYPES[0]),
        "subtype": {v for vocab in SUBTYPES.values() for v in vocab[0]},
        "channel": {v for vocab in CHANNELS.values() for v in vocab[0]},
        "direction": {v for vocab in DIRECTIONS.values() for v in vocab[0]},
        "outcome": {v for vocab in OUTCOMES.values() for v in vocab[0]},
    }
    missing = set()
    for f in spec:
        if f.kind in REFERENCE_KINDS:
            for col, allowed in f.filter.conditions():
                missing |= {f"{col}={v}" for v in allowed if v not in generated.get(col, set())}
    return sorted(missing)


def to_crm(tables: Mapping[str, pd.DataFrame]) -> CrmData:
    """A CrmData from validated tables (observation end: last creation + 90 days)."""
    return CrmData(
        accounts=tables["accounts"],
        contacts=tables["contacts"],
        leads=tables["leads"],
        events=tables["events"],
        outcomes=tables["outcomes"],
        observation_end=pd.Timestamp(tables["leads"]["created_at"].max()) + pd.Timedelta(days=90),
        has_outcome_dates=True,
        source="synthetic",
    )


def checked_validate(
    raw: Mapping[str, pd.DataFrame], config: FeatureConfig
) -> dict[str, pd.DataFrame]:
    """`validate`, with an out-of-vocabulary warning turned into an error (a generator bug)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnseenCategoryWarning)
        return validate(raw, config)


# ---------------------------------------------------------------------------------------------
# timing helpers


def interleaved_best(
    fns: Mapping[str, Callable[[], Any]],
    repeats: int,
    after_warmup: Callable[[str], None] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Best wall time of each function over `repeats` interleaved rounds, and its output.

    Each function runs once untimed first (its output is returned; `after_warmup(name)` is
    called then). The timed rounds alternate between the functions, so a burst of load from
    other processes slows the builders alike instead of skewing one ratio.
    """
    outputs: dict[str, Any] = {}
    for name, fn in fns.items():
        outputs[name] = fn()
        if after_warmup is not None:
            after_warmup(name)
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def peak_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def percentiles_us(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean of per-call times, in microseconds."""
    arr = np.asarray(seconds) * 1e6
    return {
        "p50_us": float(np.percentile(arr, 50)),
        "p99_us": float(np.percentile(arr, 99)),
        "mean_us": float(arr.mean()),
    }


# ---------------------------------------------------------------------------------------------
# references


def event_features(spec: FeatureSpec) -> list[Feature]:
    """The spec's features the references compute, in spec order."""
    return [f for f in spec if f.kind in REFERENCE_KINDS]


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_SQL_WINDOWS = {
    "all": None,
    "first_7d": "e.ts >= e.created AND e.ts <= e.created + INTERVAL 7 DAY",
    "last_7d": "e.ts > e.as_of - INTERVAL 7 DAY",
    "prev_7d": "e.ts > e.as_of - INTERVAL 14 DAY AND e.ts <= e.as_of - INTERVAL 7 DAY",
}


def _sql_condition(f: Feature) -> str:
    parts = [
        f'e."{col}" IN ({", ".join(_sql_text(v) for v in allowed)})'
        for col, allowed in f.filter.conditions()
    ]
    window = _SQL_WINDOWS[f.window]
    if window:
        parts.append(window)
    return " AND ".join(parts) or "TRUE"


def duckdb_sql(features: Sequence[Feature]) -> str:
    """One query: events joined to their lead's cutoff, one GROUP BY lead, conditional aggregates.

    Reads the registered views `events` (canonical) and `lq` (pos, lead_id, created, as_of).
    """
    inner, outer = [], []
    for f in features:
        cond = _sql_condition(f)
        col = f'"{f.name}"'
        if f.kind in ("count", "exists"):
            inner.append(f"count(*) FILTER (WHERE {cond}) AS {col}")
            outer.append(
                f"coalesce(a.{col}, 0) > 0 AS {col}"
                if f.kind == "exists"
                else f"coalesce(a.{col}, 0) AS {col}"
            )
        elif f.kind == "sum":
            inner.append(f'coalesce(sum(e."{f.source}") FILTER (WHERE {cond}), 0) AS {col}')
            outer.append(f"coalesce(a.{col}, 0.0) AS {col}")
        elif f.kind == "max":
            inner.append(f'max(e."{f.source}") FILTER (WHERE {cond}) AS {col}')
            outer.append(f"a.{col}")
        else:
            agg = "max" if f.kind == "days_since_last" else "min"
            inner.append(f"{agg}(e.ts) FILTER (WHERE {cond}) AS {col}")
            outer.append(f"(epoch_ns(l.as_of) - epoch_ns(a.{col})) / {float(DAY_NS)!r} AS {col}")
    return f"""
WITH e AS (
    SELECT ev.*, ev."timestamp" AS ts, l.pos, l.created, l.as_of
    FROM events ev JOIN lq l ON ev.lead_id = l.lead_id
    WHERE ev."timestamp" <= l.as_of
), a AS (
    SELECT e.pos, {", ".join(inner)}
    FROM e GROUP BY e.pos
)
SELECT l.pos, {", ".join(outer)}
FROM lq l LEFT JOIN a ON a.pos = l.pos
"""


def lead_cutoffs(crm: CrmData, as_of: pd.Series) -> pd.DataFrame:
    """pos, lead_id, created, as_of per lead: what the references join events to."""
    return pd.DataFrame(
        {
            "pos": np.arange(len(crm.leads), dtype=np.int64),
            "lead_id": crm.leads["lead_id"].to_numpy(),
            "created": crm.leads["created_at"].to_numpy(dtype="datetime64[ns]"),
            "as_of": pd.Series(as_of).to_numpy(dtype="datetime64[ns]"),
        }
    )


def dated_events(crm: CrmData, lq: pd.DataFrame) -> int:
    """How many events are dated at or before their lead's as_of."""
    pos = pd.Index(lq["lead_id"]).get_indexer(crm.events["lead_id"])
    return int((crm.events["timestamp"].to_numpy() <= lq["as_of"].to_numpy()[pos]).sum())


def run_duckdb(
    con: duckdb.DuckDBPyConnection, crm: CrmData, lq: pd.DataFrame, sql: str
) -> pd.DataFrame:
    """The DuckDB reference: features per lead, rows in lead order."""
    con.register("events", crm.events)
    con.register("lq", lq)
    out = con.execute(sql).df()
    return out.sort_values("pos", kind="stable").reset_index(drop=True)


def run_pandas(crm: CrmData, lq: pd.DataFrame, features: Sequence[Feature]) -> pd.DataFrame:
    """The pandas reference: merge events onto cutoffs, masked columns, one groupby lead."""
    ev = crm.events.merge(lq, on="lead_id", how="inner")
    ev = ev[ev["timestamp"] <= ev["as_of"]]
    ts = ev["timestamp"]
    windows = {
        "all": None,
        "first_7d": (ts >= ev["created"]) & (ts <= ev["created"] + pd.Timedelta(days=7)),
        "last_7d": ts > ev["as_of"] - pd.Timedelta(days=7),
        "prev_7d": (ts > ev["as_of"] - pd.Timedelta(days=14))
        & (ts <= ev["as_of"] - pd.Timedelta(days=7)),
    }
    masks: dict[Any, pd.Series] = {}
    cols: dict[str, pd.Series] = {}
    aggs: dict[str, str] = {}
    for f in features:
        key = (f.filter, f.window)
        if key not in masks:
            m = pd.Series(True, index=ev.index)
            for col, allowed in f.filter.conditions():
                m &= ev[col].isin(allowed).fillna(False).astype(bool)
            window = windows[f.window]
            if window is not None:
                m &= window
            masks[key] = m
        m = masks[key]
        if f.kind in ("count", "exists"):
            cols[f.name], aggs[f.name] = m.astype(np.int64), "sum"
        elif f.kind == "sum":
            cols[f.name], aggs[f.name] = ev[str(f.source)].where(m, 0.0).fillna(0.0), "sum"
        elif f.kind == "max":
            cols[f.name], aggs[f.name] = ev[str(f.source)].where(m), "max"
        else:
            agg = "max" if f.kind == "days_since_last" else "min"
            cols[f.name], aggs[f.name] = ts.where(m), agg
    grouped = pd.DataFrame(cols).groupby(ev["pos"].to_numpy()).agg(aggs)
    grouped = grouped.reindex(np.arange(len(lq)))
    out = {"pos": lq["pos"]}
    for f in features:
        g = grouped[f.name]
        if f.kind == "count":
            out[f.name] = g.fillna(0).astype(np.int64)
        elif f.kind == "exists":
            out[f.name] = g.fillna(0) > 0
        elif f.kind == "sum":
            out[f.name] = g.fillna(0.0)
        elif f.kind == "max":
            out[f.name] = g
        else:
            gap = np.asarray(lq["as_of"] - g, dtype="timedelta64[ns]")
            out[f.name] = pd.Series(gap / np.timedelta64(1, "D"))
    return pd.DataFrame(out)


def compare(
    ours: pd.DataFrame, ref: pd.DataFrame, features: Sequence[Feature], name: str
) -> list[str]:
    """Disagreements between our snapshot and a reference, one line per feature."""
    problems = []
    for f in features:
        a = ours[f.name].to_numpy()
        b = ref[f.name].to_numpy()
        if f.kind in ("count", "exists"):
            a, b = a.astype(np.int64), pd.Series(b).fillna(0).astype(np.int64).to_numpy()
            bad = np.flatnonzero(a != b)
        else:
            a = np.asarray(a, dtype="float64")
            b = pd.to_numeric(pd.Series(b), errors="coerce").to_numpy(dtype="float64")
            close = np.isclose(a, b, rtol=1e-9, atol=1e-9) | (np.isnan(a) & np.isnan(b))
            bad = np.flatnonzero(~close)
        if len(bad):
            i = bad[0]
            lead = ours["lead_id"].iloc[i]
            problems.append(
                f"{name}: {f.name} ({f.kind}, {f.window}) differs on {len(bad)} lead(s), "
                f"e.g. {lead}: ours={a[i]!r} {name}={b[i]!r}"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# one lead


def _plain(value: Any) -> Any:
    """A table cell as JSON would carry it: None, str, int, float, bool, ISO-8601 text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat() + "Z"
    if isinstance(value, np.generic):
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def one_lead_cases(
    rng: np.random.Generator, crm: CrmData, config: FeatureConfig, n_cases: int
) -> list[tuple[dict[str, Any], CrmData]]:
    """Leads of `crm` given exactly 20 fresh events each, all dated before as_of.

    Each case is (request, one-lead CrmData): the request holds plain dicts (lead, account,
    contact, events, as_of) as the API would receive them.
    """
    pick = np.sort(rng.choice(len(crm.leads), size=min(n_cases, len(crm.leads)), replace=False))
    leads = crm.leads.iloc[pick].reset_index(drop=True)
    created = leads["created_at"].to_numpy(dtype="datetime64[ns]")
    events = synth_events(
        rng,
        leads["lead_id"].to_numpy(dtype=object),
        created,
        np.full(len(leads), ONE_LEAD_EVENTS),
        horizon_days=AS_OF_DAYS,
        id_prefix="S",
    )
    raw = {
        "accounts": crm.accounts[crm.accounts["account_id"].isin(leads["account_id"])],
        "contacts": crm.contacts[crm.contacts["contact_id"].isin(leads["contact_id"])],
        "leads": leads,
        "events": events,
        "outcomes": crm.outcomes[crm.outcomes["lead_id"].isin(leads["lead_id"])],
    }
    typed = checked_validate(raw, config)
    accounts = typed["accounts"].set_index("account_id", drop=False)
    contacts = typed["contacts"].set_index("contact_id", drop=False)
    cases = []
    for lead in _records(typed["leads"]):
        lid, aid, cid = lead["lead_id"], lead["account_id"], lead["contact_id"]
        one = {
            "accounts": typed["accounts"][typed["accounts"]["account_id"] == aid],
            "contacts": typed["contacts"][typed["contacts"]["contact_id"] == cid],
            "leads": typed["leads"][typed["leads"]["lead_id"] == lid],
            "events": typed["events"][typed["events"]["lead_id"] == lid],
            "outcomes": typed["outcomes"][typed["outcomes"]["lead_id"] == lid],
        }
        one = {k: v.reset_index(drop=True) for k, v in one.items()}
        as_of = pd.Timestamp(lead["created_at"].rstrip("Z")) + pd.Timedelta(days=AS_OF_DAYS)
        request = {
            "lead": {k: v for k, v in lead.items() if v is not None},
            "account": _records(accounts.loc[[aid]])[0],
            "contact": None if cid is None else _records(contacts.loc[[cid]])[0],
            "events": _records(one["events"]),
            "as_of": as_of.isoformat() + "Z",
        }
        cases.append((request, to_crm(one)))
    return cases


def _same(a: Any, b: Any) -> bool:
    """Equal as feature values: missing equals missing, floats to 1e-9."""
    a_missing = a is None or a is pd.NA or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or b is pd.NA or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, int | float | np.number) and isinstance(b, int | float | np.number):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def bench_one_lead(
    spec: FeatureSpec,
    cases: Sequence[tuple[dict[str, Any], CrmData]],
    samples: int,
    batch_samples: int,
) -> tuple[dict[str, Any], list[str]]:
    """Per-call latency of OnlineBuilder.row and of snapshot on one lead; their disagreements."""
    builder = OnlineBuilder(spec)

    def call(req: dict[str, Any]) -> dict[str, Any]:
        return builder.row(req["lead"], req["account"], req["contact"], req["events"], req["as_of"])

    for i in range(min(200, samples)):  # warm-up
        call(cases[i % len(cases)][0])
    online = []
    for i in range(samples):
        req = cases[i % len(cases)][0]
        start = time.perf_counter()
        call(req)
        online.append(time.perf_counter() - start)

    problems: list[str] = []
    batch = []
    for i in range(batch_samples + 5):
        req, one = cases[i % len(cases)]
        as_of = as_of_after_creation(one.leads, AS_OF_DAYS)
        start = time.perf_counter()
        frame = snapshot(one, spec, as_of)
        elapsed = time.perf_counter() - start
        if i >= 5:  # the first few are warm-up
            batch.append(elapsed)
        if i < len(cases):
            row = call(req)
            for name in dict.fromkeys(["lead_age_days", *spec.names]):
                if not _same(row[name], frame[name].iloc[0]):
                    problems.append(
                        f"one lead {req['lead']['lead_id']}: {name} online={row[name]!r} "
                        f"snapshot={frame[name].iloc[0]!r}"
                    )
    on, ba = percentiles_us(online), percentiles_us(batch)
    result = {
        "events_per_lead": ONE_LEAD_EVENTS,
        "distinct_leads": len(cases),
        "online": on | {"calls": samples},
        "snapshot_one_lead": ba | {"calls": batch_samples},
        "snapshot_over_online_p50": ba["p50_us"] / on["p50_us"],
    }
    return result, problems


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (sizes, output, smoke mode)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--one-lead-samples", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per batch builder (best)")
    p.add_argument(
        "--duckdb-threads",
        type=int,
        default=1,
        help="DuckDB threads (default 1: our builder and pandas are single-threaded)",
    )
    p.add_argument("--json-out", type=Path, default=Path("benchmarks/results/snapshot.json"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes for CI; judges agreement only")
    p.add_argument("--seed", type=int, default=SEED)
    args = p.parse_args(argv)
    if args.smoke:
        args.leads, args.events, args.one_lead_samples = 2000, 20_000, 200
    return args


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else math.inf


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the JSON; 1 when outputs disagree."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    config = load_feature_config()
    spec = build_spec(config)
    ev_feats = event_features(spec)
    ev_spec = FeatureSpec(tuple(ev_feats))
    results: dict[str, Any] = {
        "smoke": args.smoke,
        "sizes": {"leads": args.leads, "events": args.events, "as_of_days": AS_OF_DAYS},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "duckdb": duckdb.__version__,
        },
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
    }
    memory: dict[str, float] = {}
    uncovered = uncovered_filter_values(spec)
    if uncovered:
        print(f"note: synthetic events never take {uncovered}; those features are all zero")

    # 1. synthesise and validate
    start = time.perf_counter()
    raw = synth_entities(rng, args.leads, config)
    leads = raw["leads"]
    raw["events"] = synth_events(
        rng,
        leads["lead_id"].to_numpy(dtype=object),
        leads["created_at"].to_numpy(dtype="datetime64[ns]"),
        spread(rng, args.events, args.leads),
        horizon_days=EVENT_HORIZON_DAYS,
    )
    synth_s = time.perf_counter() - start
    rows_in = sum(len(t) for t in raw.values())
    start = time.perf_counter()
    crm = to_crm(checked_validate(raw, config))
    validate_s = time.perf_counter() - start
    del raw
    memory["after_validate_mib"] = peak_mib()
    results["synthesis_seconds"] = synth_s
    results["validate"] = {
        "seconds": validate_s,
        "rows": rows_in,
        "rows_per_s": _rate(rows_in, validate_s),
        "events_per_s": _rate(args.events, validate_s),
    }
    print(
        f"synthesised {args.leads:,} leads, {args.events:,} events in {synth_s:.2f} s; "
        f"validate: {validate_s:.2f} s ({_rate(rows_in, validate_s):,.0f} rows/s over "
        f"{rows_in:,} rows of 5 tables)"
    )

    # 2. our batch builder and 3. the references, on the same cutoff, timed interleaved
    as_of = as_of_after_creation(crm.leads, AS_OF_DAYS)
    lq = lead_cutoffs(crm, as_of)
    dated = dated_events(crm, lq)
    con = duckdb.connect(config={"threads": args.duckdb_threads})
    sql = duckdb_sql(ev_feats)
    builders: dict[str, Callable[[], pd.DataFrame]] = {
        "ours_full_spec": lambda: snapshot(crm, spec, as_of),
        "ours_event_features": lambda: snapshot(crm, ev_spec, as_of),
        "duckdb": lambda: run_duckdb(con, crm, lq, sql),
        "pandas_groupby": lambda: run_pandas(crm, lq, ev_feats),
    }
    seconds, outputs = interleaved_best(
        builders,
        args.repeats,
        after_warmup=lambda name: memory.__setitem__(f"after_{name}_mib", peak_mib()),
    )
    ours = outputs["ours_event_features"]
    problems = compare(ours, outputs["duckdb"], ev_feats, "duckdb")
    problems += compare(ours, outputs["pandas_groupby"], ev_feats, "pandas")
    del outputs, builders
    full_s, ours_s = seconds["ours_full_spec"], seconds["ours_event_features"]
    duck_s, pandas_s = seconds["duckdb"], seconds["pandas_groupby"]

    n, ne = args.leads, args.events
    batch = {
        "ours_full_spec": {"seconds": full_s, "features": len(spec)},
        "ours_event_features": {"seconds": ours_s, "features": len(ev_feats)},
        "duckdb": {"seconds": duck_s, "features": len(ev_feats), "threads": args.duckdb_threads},
        "pandas_groupby": {"seconds": pandas_s, "features": len(ev_feats)},
    }
    for entry in batch.values():
        entry["rows_per_s"] = _rate(n, entry["seconds"])
        entry["events_per_s"] = _rate(ne, entry["seconds"])
    ours_ev, ours_full = batch["ours_event_features"], batch["ours_full_spec"]
    ratios = {
        "ours_over_duckdb": ours_ev["rows_per_s"] / batch["duckdb"]["rows_per_s"],
        "ours_over_pandas": ours_ev["rows_per_s"] / batch["pandas_groupby"]["rows_per_s"],
        "ours_full_over_duckdb": ours_full["rows_per_s"] / batch["duckdb"]["rows_per_s"],
        "ours_full_over_pandas": ours_full["rows_per_s"] / batch["pandas_groupby"]["rows_per_s"],
    }
    results["batch"] = batch | {"ratios": ratios, "events_dated_before_as_of": dated}

    print(
        f"\nsnapshot at created + {AS_OF_DAYS} d: {n:,} leads, {ne:,} events "
        f"({dated:,} dated <= as_of); best of {args.repeats}, interleaved"
    )
    header = f"{'builder':<38}{'seconds':>9}{'rows/s':>12}{'events/s':>13}{'ours/it':>9}"
    print(header)
    print("-" * len(header))
    labels = {
        "ours_full_spec": f"ours, full spec ({len(spec)} features)",
        "ours_event_features": f"ours, event features ({len(ev_feats)})",
        "duckdb": f"duckdb {duckdb.__version__} ({args.duckdb_threads} thread(s))",
        "pandas_groupby": f"pandas {pd.__version__} merge+groupby",
    }
    for key, entry in batch.items():
        ratio = ""
        if key in ("duckdb", "pandas_groupby"):
            ratio = f"{batch['ours_event_features']['rows_per_s'] / entry['rows_per_s']:.2f}x"
        print(
            f"{labels[key]:<38}{entry['seconds']:>9.3f}{entry['rows_per_s']:>12,.0f}"
            f"{entry['events_per_s']:>13,.0f}{ratio:>9}"
        )
    print(
        f"ratios (same event features): ours/duckdb = {ratios['ours_over_duckdb']:.2f}, "
        f"ours/pandas = {ratios['ours_over_pandas']:.2f}  (>1: ours is faster)"
    )

    # 4. one lead
    cases = one_lead_cases(rng, crm, config, ONE_LEAD_POOL)
    batch_samples = max(20, args.one_lead_samples // 10)
    one, one_problems = bench_one_lead(spec, cases, args.one_lead_samples, batch_samples)
    problems += one_problems
    results["one_lead"] = one
    print(f"\none lead, {ONE_LEAD_EVENTS} events, full spec ({len(spec)} features)")
    print(f"{'builder':<38}{'calls':>7}{'p50 us':>10}{'p99 us':>10}")
    for key, label in (
        ("online", "OnlineBuilder.row (dicts, ISO text)"),
        ("snapshot_one_lead", "snapshot on a one-lead CrmData"),
    ):
        e = one[key]
        print(f"{label:<38}{e['calls']:>7}{e['p50_us']:>10,.0f}{e['p99_us']:>10,.0f}")
    print(f"snapshot / online at p50: {one['snapshot_over_online_p50']:.1f}x")

    # 5. memory, 6. JSON
    memory["peak_mib"] = peak_mib()
    results["memory"] = memory
    results["agree"] = not problems
    results["problems"] = problems
    print(
        f"\npeak RSS {memory['peak_mib']:,.0f} MiB (after validate "
        f"{memory['after_validate_mib']:,.0f}, after our snapshot "
        f"{memory['after_ours_full_spec_mib']:,.0f}, after duckdb "
        f"{memory['after_duckdb_mib']:,.0f}, after pandas "
        f"{memory['after_pandas_groupby_mib']:,.0f})"
    )
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json_out}")
    if problems:
        print("\nOUTPUTS DISAGREE:", *problems, sep="\n  ")
        return 1
    print("outputs agree: ours == duckdb == pandas on every event feature; online == snapshot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
