"""The events of a HubSpot export: the property history, activities (calls, emails, meetings,
messages), touches (form submissions, marketing emails, web sessions), deals (with the won/lost
moments they give) and the history's field updates."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from leadscore.features.schema import DataContractError
from leadscore.features.sources.hubspot.export import (
    _Export,
    _first,
    _frame,
    _moments_of,
    parse_moments,
)
from leadscore.features.sources.hubspot.mapping import ActivitiesMap, ActivityObject, object_type
from leadscore.features.sources.hubspot.values import _activity, _Known, _shown, decode


def _history(ex: _Export) -> pd.DataFrame:
    """Every history entry: object, id, property, value, timestamp, seq (chronological order
    within one property, for ties), line."""
    columns = ["object", "id", "property", "value", "timestamp", "seq", "line"]
    path = ex.root / ex.m.history.file
    if not path.is_file():
        return _typed_history(pd.DataFrame({c: [] for c in columns}))
    rows: list[tuple[Any, ...]] = []
    shape = ('expected {"objectType": ..., "id": ..., "propertiesWithHistory": {property: '
             '[{"value": ..., "timestamp": ...}, ...]}}')
    with path.open(encoding="utf-8-sig") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataContractError(
                    [f"{path} line {n}: not valid JSON ({exc.msg} at column {exc.colno})"]
                ) from None
            props = item.get("propertiesWithHistory") if isinstance(item, dict) else None
            if not isinstance(props, dict) or item.get("id") in (None, "") or not item.get(
                "objectType"
            ):
                raise DataContractError([f"{path} line {n}: {shape}"])
            obj, oid = object_type(item["objectType"]), str(item["id"])
            for prop, entries in props.items():
                if not isinstance(entries, list) or not all(
                    isinstance(e, dict) and e.get("timestamp") not in (None, "") for e in entries
                ):
                    raise DataContractError(
                        [f"{path} line {n}: property {prop!r}: expected a list of "
                         '{"value": ..., "timestamp": ...} entries, each with a timestamp']
                    )  # fmt: skip
                last = len(entries) - 1  # HubSpot lists the newest first
                for i, entry in enumerate(entries):
                    rows.append((obj, oid, prop, _value_text(entry.get("value")),
                                 str(entry["timestamp"]), last - i, n))  # fmt: skip
    history = pd.DataFrame(rows, columns=columns)
    parsed = parse_moments(history["timestamp"].astype("string"), ex.config.date_format)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        row = history.iloc[bad[0]]
        raise DataContractError(
            [f"{path} line {row['line']}: property {row['property']}: timestamp "
             f"{row['timestamp']!r} is not a date or date-time (ISO-8601 or epoch milliseconds)"]
        )  # fmt: skip
    history["timestamp"] = parsed.to_numpy()
    return _typed_history(history).sort_values(["timestamp", "seq"], kind="stable"
                                               ).reset_index(drop=True)  # fmt: skip


def _typed_history(history: pd.DataFrame) -> pd.DataFrame:
    return history.astype({"object": "string", "id": "string", "property": "string",
                           "value": "string", "timestamp": "datetime64[ns]", "seq": "int64",
                           "line": "int64"})  # fmt: skip


def _value_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _activities(ex: _Export, leads: pd.Index) -> list[pd.DataFrame]:
    acts = ex.m.activities
    parts = []
    for name, obj in acts.objects.items():
        found = ex.read(obj.file or name)
        if found is None:
            continue
        frame, path = found
        ids = ex.require(frame, path, ("hs_object_id", "id"), f"the {name} id")
        stamp = pd.Series(pd.NA, index=frame.index, dtype="string")
        for prop in acts.timestamp:
            stamp = stamp.fillna(ex.column(frame, path, prop))
        if stamp.isna().any():
            first = int(np.flatnonzero(stamp.isna().to_numpy())[0]) + 1
            ex.problems.append(f"{path}: property {acts.timestamp[0]}: {int(stamp.isna().sum())} "
                               f"row(s) without a time (e.g. data row {first}); an activity "
                               f"needs {' or '.join(acts.timestamp)}")  # fmt: skip
        when = ex.moments(stamp, f"{path}: property {acts.timestamp[0]}")
        ex.check()
        ex.name(path, *obj.ignore, *acts.ignore)
        raw = pd.DataFrame({
            "subtype": ex.column(frame, path, obj.subtype.property),
            "direction": ex.column(frame, path, obj.direction.property),
            "outcome": ex.column(frame, path, obj.outcome.property),
            "activity_type": ex.column(frame, path, acts.activity_type.property),
        })  # fmt: skip
        classes, unnamed = _classify(acts, obj, raw, ex.known)
        for (prop, value), rows in unnamed.items():
            ex.notes.append(f"{path}: property {prop}: {rows} row(s) hold {value!r}, which the "
                            "mapping does not name")  # fmt: skip
        where = ex.attach(ids, name, leads, str(path))
        pick = where["row"].to_numpy()
        several = where["row"].duplicated(keep=False).to_numpy()
        event_ids = (name + ":" + ids.iloc[pick].reset_index(drop=True)).where(
            ~several, name + ":" + ids.iloc[pick].reset_index(drop=True) + ":" +
            where["lead_id"].reset_index(drop=True))  # fmt: skip
        cls = classes.iloc[pick].reset_index(drop=True)
        channel = np.where(cls["type"] == "sales_activity", "sales", obj.channel)
        parts.append(_frame(len(where), event_id=event_ids, lead_id=where["lead_id"],
                            timestamp=when.iloc[pick], type=cls["type"], subtype=cls["subtype"],
                            channel=channel, direction=cls["direction"],
                            outcome=cls["outcome"]))  # fmt: skip
    for name in acts.not_events:
        found = ex.read(name)
        if found is not None:
            frame, path = found
            ex.name(path, *frame.columns)
            ex.notes.append(f"{path}: {len(frame)} {name}: not exchanges with the lead, no events")
    return parts


def _classify(
    acts: ActivitiesMap, obj: ActivityObject, raw: pd.DataFrame, known: _Known
) -> tuple[pd.DataFrame, dict[tuple[str, str], int]]:
    """type, subtype, direction, outcome for every row (one :func:`_activity` per distinct
    combination of raw values), and the rows holding each unnamed (property, value)."""
    keys = list(raw.columns)
    codes = raw.fillna("\x00").groupby(keys, sort=False).ngroup().to_numpy()
    firsts = pd.Series(np.arange(len(raw))).groupby(codes).first()
    sizes = np.bincount(codes, minlength=len(firsts)) if len(raw) else np.zeros(0, dtype=int)
    results = []
    unnamed_rows: dict[tuple[str, str], int] = {}
    for code, row in enumerate(firsts.to_numpy()):
        values = {str(k): (None if pd.isna(v) else str(v)) for k, v in raw.iloc[row].items()}
        result, unnamed = _activity(acts, obj, values, known)
        results.append(result)
        for pair in unnamed:
            unnamed_rows[pair] = unnamed_rows.get(pair, 0) + int(sizes[code])
    names = ("type", "subtype", "direction", "outcome")
    table = np.array(results, dtype=object).reshape(len(results), 4)
    out = pd.DataFrame({c: pd.Series(table[codes, i] if len(raw) else [], dtype="string")
                        for i, c in enumerate(names)})  # fmt: skip
    return out, unnamed_rows


def _touches(ex: _Export, leads: pd.Index, emails: pd.Series) -> list[pd.DataFrame]:
    parts = []
    fm = ex.m.form_submissions
    found = ex.read(fm.file)
    if found is not None:
        frame, path = found
        ids = ex.require(frame, path, fm.id, "the submission id")
        contact = ex.require(frame, path, fm.contact, "the contact who submitted")
        when = ex.moments(ex.require(frame, path, fm.timestamp, "the submission time"),
                          f"{path}: property {fm.timestamp}")  # fmt: skip
        ex.check()
        ex.name(path, *fm.ignore)
        subtype = ex.decoded(fm.subtype, ex.column(frame, path, fm.subtype.property),
                             f"{path}: property {fm.subtype.property}")  # fmt: skip
        keep = contact.isin(leads).to_numpy()
        if (~keep).any():
            ex.notes.append(f"{path}: {int((~keep).sum())} submission(s) by no known contact: "
                            "not read")  # fmt: skip
        parts.append(_frame(int(keep.sum()), event_id="form_submissions:" + ids[keep],
                            lead_id=contact[keep], timestamp=when[keep], type="touch",
                            subtype=subtype[keep], channel=fm.channel,
                            direction="inbound"))  # fmt: skip
    em = ex.m.marketing_email_events
    found = ex.read(em.file)
    if found is not None:
        frame, path = found
        ids = ex.require(frame, path, em.id, "the event id")
        recipient = ex.require(frame, path, em.recipient, "the recipient's email")
        when = ex.moments(ex.require(frame, path, em.timestamp, "the event time"),
                          f"{path}: property {em.timestamp}")  # fmt: skip
        ex.check()
        ex.name(path, *em.ignore)
        kind = ex.column(frame, path, em.type.property)
        named = {v: decode(em.type, v) for v in kind.dropna().unique()}
        direction = kind.map({v: d if ok else None for v, (d, ok) in named.items()}
                             ).astype("string")  # fmt: skip
        subtype = ex.decoded(em.subtype, ex.column(frame, path, em.subtype.property),
                             f"{path}: property {em.subtype.property}")  # fmt: skip
        by_email = pd.Series(emails.index, index=emails.str.casefold().to_numpy())
        by_email = by_email[~by_email.index.duplicated()]
        lead = recipient.str.casefold().map(by_email).astype("string")
        touch = direction.notna().to_numpy()
        if (~touch).any():
            ex.notes.append(f"{path}: {int((~touch).sum())} event(s) of types the mapping does "
                            f"not make touches ({_shown(sorted(kind[~touch].dropna().unique()))})"
                            ": not read")  # fmt: skip
        unknown = touch & lead.isna().to_numpy()
        if unknown.any():
            ex.notes.append(f"{path}: {int(unknown.sum())} event(s) to no known contact's "
                            f"{ex.m.contacts.email}: not read")  # fmt: skip
        keep = touch & ~unknown
        parts.append(_frame(int(keep.sum()), event_id="marketing_email_events:" + ids[keep],
                            lead_id=lead[keep], timestamp=when[keep], type="touch",
                            subtype=subtype[keep], channel=em.channel,
                            direction=direction[keep]))  # fmt: skip
    wm = ex.m.web_sessions
    found = ex.read(wm.file)
    if found is not None:
        frame, path = found
        ids = ex.require(frame, path, wm.id, "the session id")
        contact = ex.require(frame, path, wm.contact, "the visiting contact")
        when = ex.moments(ex.require(frame, path, wm.timestamp, "the session start"),
                          f"{path}: property {wm.timestamp}")  # fmt: skip
        ex.check()
        ex.name(path, *wm.ignore)
        subtype = ex.decoded(wm.subtype, ex.column(frame, path, wm.subtype.property),
                             f"{path}: property {wm.subtype.property}")  # fmt: skip
        counts = {c: ex.column(frame, path, getattr(wm, c))
                  for c in ("page_views", "pricing_page_views", "demo_page_views",
                            "duration_seconds")}  # fmt: skip
        keep = contact.isin(leads).to_numpy()
        if (~keep).any():
            ex.notes.append(f"{path}: {int((~keep).sum())} session(s) of no known contact: "
                            "not read")  # fmt: skip
        parts.append(_frame(int(keep.sum()), event_id="web_sessions:" + ids[keep],
                            lead_id=contact[keep], timestamp=when[keep], type="web_session",
                            subtype=subtype[keep], channel="web", direction="inbound",
                            **{c: v[keep] for c, v in counts.items()}))  # fmt: skip
    return parts


def _deals(ex: _Export, leads: pd.Index, history: pd.DataFrame
           ) -> tuple[list[pd.DataFrame], pd.DataFrame]:  # fmt: skip
    """opportunity_opened events, and won_at/lost_at per lead."""
    dm = ex.m.deals
    none = pd.DataFrame({"lead_id": pd.Series([], dtype="string"),
                         "won_at": pd.Series([], dtype="datetime64[ns]"),
                         "lost_at": pd.Series([], dtype="datetime64[ns]")})  # fmt: skip
    found = ex.read(dm.file)
    if found is None:
        return [], none
    frame, path = found
    ids = ex.require(frame, path, dm.id, "the deal id")
    created = ex.moments(ex.require(frame, path, dm.created_at, "the deal's creation"),
                         f"{path}: property {dm.created_at}")  # fmt: skip
    ex.check()
    ex.name(path, *dm.ignore, *ex.m.state("deals"))
    amount = ex.numbers(ex.column(frame, path, dm.amount), f"{path}: property {dm.amount}")
    closed = ex.moments(ex.column(frame, path, dm.close_date), f"{path}: property {dm.close_date}")
    stage = ex.column(frame, path, dm.stage).str.casefold()
    won_flag = ex.column(frame, path, dm.is_closed_won).str.strip().str.lower()
    ex.check()
    deals = history[(history["object"] == "deals")]
    first_amount = _first(deals[deals["property"] == dm.amount], "id", "value")
    amount = pd.to_numeric(ids.map(first_amount), errors="coerce").astype("float64").fillna(amount)
    stages = deals[deals["property"] == dm.stage]
    values = stages["value"].str.casefold()
    won_hist = _first(stages[values.isin([s.casefold() for s in dm.won_stages]).fillna(False)],
                      "id", "timestamp")  # fmt: skip
    lost_hist = _first(stages[values.isin([s.casefold() for s in dm.lost_stages]).fillna(False)],
                       "id", "timestamp")  # fmt: skip
    is_won = won_flag.isin(["true", "1", "yes"]).fillna(False) | stage.isin(
        [s.casefold() for s in dm.won_stages]).fillna(False)
    is_lost = stage.isin([s.casefold() for s in dm.lost_stages]).fillna(False)
    won = _moments_of(ids, won_hist).fillna(closed.where(is_won.to_numpy()))
    lost = _moments_of(ids, lost_hist).fillna(closed.where(is_lost.to_numpy()))
    where = ex.attach(ids, "deals", leads, str(path))
    pick = where["row"].to_numpy()
    several = where["row"].duplicated(keep=False).to_numpy()
    base = ("deals:" + ids.iloc[pick]).reset_index(drop=True)
    event_ids = base.where(~several, base + ":" + where["lead_id"].reset_index(drop=True))
    events = _frame(len(where), event_id=event_ids, lead_id=where["lead_id"],
                    timestamp=created.iloc[pick], type="opportunity_opened", channel="sales",
                    value=amount.iloc[pick])  # fmt: skip
    per_lead = _frame(len(where), lead_id=where["lead_id"], won_at=won.iloc[pick],
                      lost_at=lost.iloc[pick])  # fmt: skip
    outcome = per_lead.groupby("lead_id")[["won_at", "lost_at"]].min().reset_index()
    return [events], outcome


def _field_updates(ex: _Export, history: pd.DataFrame, leads: pd.DataFrame) -> pd.DataFrame:
    """History entries of the properties the mapping names, as field_update events."""
    parts = []
    fields = {(object_type(o), p): f for o, props in ex.m.history.fields.items()
              for p, f in props.items()}  # fmt: skip
    keys = list(zip(history["object"], history["property"], strict=True))
    chosen = history[[k in fields for k in keys]].copy()
    if len(chosen):
        chosen["field"] = [fields[(o, p)] for o, p in zip(chosen["object"], chosen["property"],
                                                          strict=True)]  # fmt: skip
        for obj, group in chosen.groupby("object"):
            if obj == "contacts":
                pairs = pd.DataFrame({"id": leads["lead_id"], "lead_id": leads["lead_id"]})
            elif obj == "companies":
                pairs = pd.DataFrame({"id": leads["account_id"], "lead_id": leads["lead_id"]})
            else:
                pairs = ex.links(str(obj), "contacts").set_axis(["id", "lead_id"], axis=1)
            joined = group.merge(pairs.dropna(), on="id")
            base = ("history:" + joined["object"] + ":" + joined["id"] + ":" +
                    joined["property"] + ":" + joined["seq"].map("{:06d}".format))  # fmt: skip
            if obj != "contacts":
                base = base + ":" + joined["lead_id"]
            parts.append(_frame(len(joined), event_id=base, lead_id=joined["lead_id"],
                                timestamp=joined["timestamp"], type="field_update",
                                field=joined["field"], field_value=joined["value"]))  # fmt: skip
    used = set(fields) | {("contacts", ex.m.lifecycle.property),
                          ("deals", ex.m.deals.stage), ("deals", ex.m.deals.amount)}  # fmt: skip
    used |= {(o, p) for o in ("contacts", "companies", "deals") for p in ex.m.state(o)}
    left = sorted({f"{o}.{p}" for o, p in keys if (o, p) not in used})
    if left:
        ex.notes.append(f"{ex.root / ex.m.history.file}: history of {len(left)} propert(ies) no "
                        f"mapping names, not read: {_shown(left, 8)} (name them under "
                        "history.fields to read them as dated fields)")  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
