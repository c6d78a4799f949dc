"""Synthetic canonical CRM tables for the benchmarks, drawn with numpy (leadforge is too slow at
100k leads), deterministic by seed.

:func:`synth_tables` draws raw accounts, contacts, leads, events and outcomes in canonical
column names (categories from the feature config's own vocabularies where it declares an
order); :func:`to_crm` validates them with the package's contract; :func:`write_canonical`
writes them as a canonical directory (Parquet or CSV, plus ``source.yaml``) that
``leadscore score --data`` reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData
from leadscore.features.schema import UnseenCategoryWarning
from leadscore.features.sources import from_frames
from leadscore.features.spec import Feature

EVENT_HORIZON_DAYS = 60  # events fall within this many days of their lead's creation
CREATED_SPAN_DAYS = 30  # leads are created over this many days from START
OBSERVATION_DAYS = 90  # the source's observation end: the last creation + this
START = np.datetime64("2024-03-01T00:00:00", "ns")

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


def _bands(config: FeatureConfig, qualified: str, fallback: Sequence[str]) -> Vocab:
    """The declared band order of a column (or `fallback`), uniformly drawn."""
    return _uniform(config.order_of(qualified) or tuple(fallback))


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
                rng, _bands(config, "account.employee_band", ("small", "large")), n_accounts
            ),
            "revenue_band": _draw(
                rng, _bands(config, "account.revenue_band", ("low", "high")), n_accounts
            ),
            "process_maturity_band": _draw(
                rng, _bands(config, "account.process_maturity_band", ("low", "high")), n_accounts
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
                rng, _bands(config, "contact.seniority", ("junior", "senior")), n_contacts
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


def synth_tables(
    rng: np.random.Generator, n_leads: int, n_events: int, config: FeatureConfig
) -> dict[str, pd.DataFrame]:
    """The five raw canonical tables: `n_leads` leads and exactly `n_events` events, dated
    within EVENT_HORIZON_DAYS of their lead's creation."""
    raw = synth_entities(rng, n_leads, config)
    leads = raw["leads"]
    per_lead = spread(rng, n_events, n_leads)
    raw["events"] = synth_events(
        rng,
        leads["lead_id"].to_numpy(dtype=object),
        leads["created_at"].to_numpy(dtype="datetime64[ns]"),
        per_lead,
        horizon_days=EVENT_HORIZON_DAYS,
    )
    return raw


def observation_end(leads: pd.DataFrame) -> pd.Timestamp:
    """The synthetic source's observation end: the last creation + OBSERVATION_DAYS."""
    return pd.Timestamp(leads["created_at"].max()) + pd.Timedelta(days=OBSERVATION_DAYS)


def to_crm(raw: Mapping[str, pd.DataFrame], config: FeatureConfig) -> CrmData:
    """Validate raw tables with the package's contract (``sources.from_frames``); an
    out-of-vocabulary warning is an error here (a generator bug)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnseenCategoryWarning)
        end = observation_end(raw["leads"])
        return from_frames(raw, config, observation_end=end, source="synthetic")


def write_canonical(
    directory: Path,
    leads: int,
    events: int,
    seed: int,
    fmt: str = "parquet",
    config: FeatureConfig | None = None,
) -> Path:
    """Synthetic canonical tables of `leads` leads and `events` events as a canonical
    directory: one ``TABLE.parquet`` (or ``.csv``) per table and ``source.yaml`` with the
    observation end. The same seed writes the same tables."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    raw = synth_tables(np.random.default_rng(seed), leads, events, config or load_feature_config())
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in raw.items():
        path = directory / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
    end = observation_end(raw["leads"])
    (directory / "source.yaml").write_text(f"observation_end: '{end.isoformat()}'\n")
    return directory


def uncovered_filter_values(features: Iterable[Feature]) -> list[str]:
    """Filter values of `features` the synthetic events never take (those are all zero)."""
    generated: dict[str, set[Any]] = {
        "type": set(EVENT_TYPES[0]),
        "subtype": {v for vocab in SUBTYPES.values() for v in vocab[0]},
        "channel": {v for vocab in CHANNELS.values() for v in vocab[0]},
        "direction": {v for vocab in DIRECTIONS.values() for v in vocab[0]},
        "outcome": {v for vocab in OUTCOMES.values() for v in vocab[0]},
    }
    missing = set()
    for f in features:
        for col, allowed in f.filter.conditions():
            missing |= {f"{col}={v}" for v in allowed if v not in generated.get(col, set())}
    return sorted(missing)
