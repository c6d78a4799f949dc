"""Shared fixtures: small generated leadforge bundles and tiny canonical tables."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from leadscore.features.config import FeatureConfig, load_feature_config

pytest_plugins = ["tests.services"]

# Property tests: `make test` runs the full profile; `make test-fast` the light one (a fifth of
# the examples), chosen with HYPOTHESIS_PROFILE.
settings.register_profile("full", deadline=None)
settings.register_profile("fast", deadline=None)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "full")
settings.load_profile(PROFILE)


def examples(n: int) -> int:
    """How many examples a property test draws: `n` in the full profile, a fifth when fast."""
    return max(10, n // 5) if PROFILE == "fast" else n


BUNDLE_SEED = 11
BUNDLE_LEADS = 300


def _generate(out: Path, mode: str, seed: int = BUNDLE_SEED, leads: int = BUNDLE_LEADS) -> Path:
    from leadforge.api import Generator

    gen = Generator.from_recipe("b2b_saas_procurement_v1", seed=seed, exposure_mode=mode)
    gen.generate(n_leads=leads, difficulty="intermediate").save(str(out))
    return out


@pytest.fixture(scope="session")
def ri_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small research_instructor bundle (full 90-day history, dated outcomes)."""
    return _generate(tmp_path_factory.mktemp("lf") / "ri", "research_instructor")


@pytest.fixture(scope="session")
def sp_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student_public bundle of the same recipe, seed, difficulty and size."""
    return _generate(tmp_path_factory.mktemp("lf") / "sp", "student_public")


@pytest.fixture(scope="session")
def config() -> FeatureConfig:
    """The repository's config/features.yaml."""
    return load_feature_config()


def tiny_tables() -> dict[str, pd.DataFrame]:
    """Three leads of two accounts, a handful of events: canonical raw frames, all text.

    Every moment has a time of day (a date alone would mean the end of that day).
    """
    accounts = pd.DataFrame(
        {
            "account_id": ["a1", "a2"],
            "company_name": ["Acme", "Globex"],
            "industry": ["logistics", "manufacturing"],
            "region": ["US", "UK"],
            "employee_band": ["200-499", "1000-1999"],
            "revenue_band": ["$10M-$50M", "$200M+"],
        }
    )
    contacts = pd.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3"],
            "account_id": ["a1", "a2", "a2"],
            "role_function": ["vp_finance", "ap_manager", "it_director"],
            "seniority": ["vp", "manager", "director"],
            "buyer_role": ["economic_buyer", "champion", "technical_evaluator"],
        }
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["l1", "l2", "l3"],
            "account_id": ["a1", "a2", "a2"],
            "contact_id": ["c1", "c2", "c3"],
            "created_at": ["2024-01-01T00:00:00", "2024-01-05T09:30:00", "2024-01-10T00:00:00"],
            "source": ["inbound_marketing", "sdr_outbound", "partner_referral"],
        }
    )
    events = pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e4", "e5", "e6"],
            "lead_id": ["l1", "l1", "l1", "l2", "l2", "l3"],
            "timestamp": [
                "2024-01-02T00:00:00", "2024-01-03T12:00:00", "2024-01-20T00:00:00",
                "2024-01-05T10:00:00", "2024-01-06T00:00:00", "2024-01-11T00:00:00",
            ],
            "type": ["touch", "web_session", "sales_activity", "touch", "touch", "web_session"],
            "subtype": ["webinar", "pricing_page", "meeting", "email", "call", "demo_page"],
            "direction": ["inbound", "inbound", "outbound", "outbound", "outbound", "inbound"],
            "outcome": [None, None, "meeting_set", None, None, None],
            "pricing_page_views": [None, "3", None, None, None, "0"],
            "page_views": [None, "5", None, None, None, "2"],
        }
    )  # fmt: skip
    outcomes = pd.DataFrame(
        {
            "lead_id": ["l1", "l2", "l3"],
            "sql_at": ["2024-01-20T00:00:00", None, None],
            "won_at": ["2024-02-20T00:00:00", None, None],
            "lost_at": [None, "2024-01-25T00:00:00", None],
        }
    )
    return {"accounts": accounts, "contacts": contacts, "leads": leads, "events": events,
            "outcomes": outcomes}  # fmt: skip


@pytest.fixture
def tiny() -> Callable[[], dict[str, pd.DataFrame]]:
    """A factory of fresh tiny canonical raw tables (mutate freely)."""
    return tiny_tables
