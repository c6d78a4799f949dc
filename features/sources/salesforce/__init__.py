"""Salesforce exports: a folder of object files (`Lead.csv`, `Task.csv`, ...) as canonical tables.

Files are named by object API name (CSV, Parquet or Excel, any letter case), columns by field
API name; only `Lead` is required. What an org customises (custom fields, picklist values, SQL
statuses, closed stages, campaign and activity types) is in the mapping file,
`config/salesforce.yaml`. Current state (Status, Rating, IsConverted, StageName, ...) never
reaches a feature, and a column no mapping names is listed in a note, never silently dropped.

* :mod:`.mapping`: the mapping file's models and :func:`load_mapping`;
* :mod:`.reader`: :func:`is_salesforce_export` and :func:`load_salesforce`, which reads the
  objects (:mod:`.export`) and turns them into accounts, contacts, leads, outcomes and events
  (:mod:`.events`); its docstring lists the fields read and how each becomes canonical;
* :mod:`.writer`: :func:`write_salesforce` writes canonical data back as such an export, traps
  included (due dates unlike creation dates, current state filled from the outcome), for tests
  and demos;
* :mod:`.frames`: the column helpers the reader and the writer share.
"""

from __future__ import annotations

from leadscore.features.sources.salesforce.mapping import SalesforceMap, load_mapping
from leadscore.features.sources.salesforce.reader import is_salesforce_export, load_salesforce
from leadscore.features.sources.salesforce.writer import write_salesforce

__all__ = [
    "SalesforceMap",
    "is_salesforce_export",
    "load_mapping",
    "load_salesforce",
    "write_salesforce",
]
