"""Column helpers the Salesforce reader and writer share: values as text, flags and lookups,
how records find their lead (`_Links`), and values written the way Salesforce exports them."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.schema import FALSE_TEXT, TRUE_TEXT
from leadscore.features.sources.common import number_in, to_band


def _text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def _flag(values: pd.Series) -> pd.Series:
    text = _text(values).str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(TRUE_TEXT).fillna(False).astype(bool)] = True
    out[text.isin(FALSE_TEXT).fillna(False).astype(bool)] = False
    return out


def _lookup(values: pd.Series, table: Mapping[str, str], keep: bool = True) -> pd.Series:
    """Values through a table matched ignoring case; unlisted ones kept (or missing)."""
    lowered = {str(k).strip().lower(): v for k, v in table.items()}
    text = _text(values)
    mapped = _at(text.str.lower(), pd.Series(lowered, dtype="string"))
    return mapped.fillna(text) if keep else mapped


def _at(keys: pd.Series, table: pd.Series) -> pd.Series:
    """`table[key]` for each key, missing where absent, on the keys' positions (0..n-1)."""
    table = table[~table.index.duplicated() & table.index.notna()]
    return table.reindex(pd.Index(keys.to_numpy(dtype=object))).reset_index(drop=True)


def _later(a: pd.Series, b: pd.Series) -> pd.Series:
    """The later of two moments, row by row (either one when the other is missing)."""
    return a.where(b.isna() | (a >= b), b)


def _none(n: int) -> pd.Series:
    return pd.Series(pd.NA, index=pd.RangeIndex(n), dtype="string")


def _nat(n: int) -> pd.Series:
    return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[ns]")


def _example(values: pd.Series, mask: pd.Series) -> str:
    i = int(np.flatnonzero(mask.to_numpy())[0])
    return f"data row {i + 1}: {values.iloc[i]!r}"


# ---------------------------------------------------------------------------------------------
# links: how a record finds its lead


@dataclass
class _Links:
    """How activities, members and opportunities find their lead."""

    lead_ids: frozenset[str]
    by_contact: pd.DataFrame  # contact_id, lead_id, created_at: converted leads
    by_opportunity: pd.Series  # opportunity id -> lead id

    def resolve(self, who: pd.Series, moment: pd.Series,
                what: pd.Series | None = None) -> pd.Series:  # fmt: skip
        """The lead of each row: `who` a lead id, or a contact (the lead converted into it; with
        several, the latest created at or before `moment`, else the earliest); then `what`
        an opportunity of the lead."""
        who = who.reset_index(drop=True).astype("string")
        moment = moment.reset_index(drop=True)
        out = who.where(who.isin(self.lead_ids).fillna(False).astype(bool))
        pending = (out.isna() & who.notna()).to_numpy()
        if pending.any() and len(self.by_contact):
            rows = np.flatnonzero(pending)
            cand = pd.DataFrame({"row": rows, "contact_id": who.to_numpy()[rows],
                                 "moment": moment.to_numpy()[rows]})  # fmt: skip
            cand = cand.merge(self.by_contact, on="contact_id")
            if len(cand):
                cand = cand.sort_values(["row", "created_at", "lead_id"], kind="stable")
                chosen = cand.groupby("row")["lead_id"].first()
                before = cand[cand["created_at"] <= cand["moment"]]
                latest = before.groupby("row")["lead_id"].last()
                chosen.loc[latest.index] = latest
                values = out.to_numpy(dtype=object)
                values[chosen.index.to_numpy()] = chosen.to_numpy()
                out = pd.Series(values, dtype="string")
        if what is not None:
            via = _at(what.reset_index(drop=True), self.by_opportunity).astype("string")
            out = out.fillna(via)
        return out


def _links(lead_ids: pd.Series, created: pd.Series, contact: pd.Series,
           opportunity: pd.Series) -> _Links:  # fmt: skip
    converted = contact.notna()
    by_contact = pd.DataFrame({"contact_id": contact[converted].to_numpy(),
                               "lead_id": lead_ids[converted].to_numpy(),
                               "created_at": created[converted].to_numpy()})  # fmt: skip
    has_opp = opportunity.notna()
    by_opp = pd.Series(lead_ids[has_opp].to_numpy(), index=opportunity[has_opp].to_numpy())
    by_opp = by_opp[~by_opp.index.duplicated()]
    return _Links(frozenset(lead_ids.dropna()), by_contact, by_opp)


# ---------------------------------------------------------------------------------------------
# writing values


def _iso(values: pd.Series) -> pd.Series:
    """Salesforce API date-times (2024-01-05T10:00:00.000Z); microseconds when a moment has
    them (the end of a day), so that nothing moves."""
    stamps = pd.Series(pd.to_datetime(values).to_numpy(dtype="datetime64[ns]"))
    micro = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    whole_ms = (stamps.dt.microsecond % 1000 == 0).fillna(True).astype(bool)
    out = micro.str[:-3].where(whole_ms, micro) + "Z"
    return out.where(stamps.notna(), None)


def _day(values: pd.Series) -> pd.Series:
    stamps = pd.Series(pd.to_datetime(values).to_numpy(dtype="datetime64[ns]"))
    return stamps.dt.strftime("%Y-%m-%d").where(stamps.notna(), None)


def _reverse(table: Mapping[str, Any]) -> dict[Any, str]:
    """Canonical value -> the first source value that means it."""
    out: dict[Any, str] = {}
    for key, value in table.items():
        out.setdefault(value, key)
    return out


def _put(values: pd.Series, table: Mapping[str, str]) -> pd.Series:
    text = _text(values)
    return text.map(lambda v: table.get(v, v) if isinstance(v, str) else None)


def _whole(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    present = numbers.dropna()
    if len(present) and (present % 1 == 0).all():
        return numbers.round().astype("Int64")
    return numbers


def _band_numbers(bands: pd.Series, order: tuple[str, ...] | None, what: str) -> pd.Series:
    out = pd.Series(np.nan, index=bands.index, dtype="float64")
    if not order:
        if bands.notna().any():
            warnings.warn(f"{what}: features.yaml declares no bands; not written", stacklevel=3)
        return out
    check = {b: number_in(b) for b in order}
    wrong = [b for b, n in check.items() if to_band(pd.Series([n]), order).iloc[0] != b]
    unknown = sorted(set(bands.dropna()) - set(order))
    if wrong or unknown:
        warnings.warn(f"{what}: band(s) {wrong + unknown} cannot be written as a number that "
                      "reads back as the same band; not written", stacklevel=3)  # fmt: skip
    good = {b: n for b, n in check.items() if b not in wrong}
    return _at(bands, pd.Series(good, dtype="float64")).set_axis(bands.index)
