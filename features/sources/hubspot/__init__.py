"""HubSpot exports (CRM v3 internal property names) as canonical tables, and back.

What is read from where is the mapping, `hubspot.yaml` (the packaged default or your own); the
export folder's shape is documented at its top. Every contact is a lead (its primary company the
account); calls, emails, meetings, form submissions, marketing emails, web sessions and deals
become events; the property history (`propertiesWithHistory`) becomes dated field updates and
dates the outcomes (SQL, won, lost). Current state (`lifecyclestage`, `hs_lead_status`,
`hubspotscore`, `dealstage`, ...) goes to the outcomes table only, never to a column a feature
reads, and every column no mapping names is listed in the notes, never silently dropped.

* :mod:`.mapping`: the mapping file's models and :func:`load_mapping`;
* :mod:`.reader`: :func:`is_hubspot_export` and :func:`load_hubspot`, which reads the files
  (:mod:`.export`) and turns them into contacts, leads, accounts and outcomes, and activities,
  touches, deals and the property history into events (:mod:`.events`); its docstring lists
  the fields read and how each becomes canonical;
* :mod:`.writer`: :func:`write_hubspot` writes canonical data as such an export, with HubSpot's
  current-state traps filled from the outcomes; read back, it gives the same features and
  outcomes;
* :mod:`.values`: what the reader and the writer share: :func:`decode` and its inverse
  :func:`encodings`, how one activity is classified, moments and values as text.
"""

from __future__ import annotations

from leadscore.features.sources.hubspot.mapping import Coded, HubSpotMapping, load_mapping
from leadscore.features.sources.hubspot.reader import is_hubspot_export, load_hubspot
from leadscore.features.sources.hubspot.values import decode, encodings
from leadscore.features.sources.hubspot.writer import write_hubspot

__all__ = [
    "Coded",
    "HubSpotMapping",
    "decode",
    "encodings",
    "is_hubspot_export",
    "load_hubspot",
    "load_mapping",
    "write_hubspot",
]
