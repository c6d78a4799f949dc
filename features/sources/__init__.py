"""Source adapters: map a CRM export onto the canonical tables of the data contract.

A new CRM export is a new adapter here, never a change to the features.
"""

from __future__ import annotations

from pathlib import Path

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData
from leadscore.features.schema import DataContractError
from leadscore.features.sources.canonical import from_frames, load_canonical
from leadscore.features.sources.hubspot import is_hubspot_export, load_hubspot
from leadscore.features.sources.leadforge import is_leadforge_bundle, load_leadforge
from leadscore.features.sources.salesforce import is_salesforce_export, load_salesforce

__all__ = ["from_frames", "load_data", "load_source"]


def load_data(
    path: Path | str, mapping: Path | str | None = None, config: FeatureConfig | None = None
) -> tuple[CrmData, FeatureConfig]:
    """A source and the feature config to read it with: a flat file with its mapping (whose
    columns become the config's own fields), or any other source with `config`."""
    config = config or load_feature_config()
    if mapping is not None and Path(path).is_dir():  # a CRM export with its own field mapping
        root = Path(path)
        if is_salesforce_export(root):
            return load_salesforce(root, config, Path(mapping)), config
        if is_hubspot_export(root):
            return load_hubspot(root, config, Path(mapping)), config
        raise DataContractError([f"{root}: --map is for a flat file, or a Salesforce or HubSpot "
                                 "export folder; this folder is none of them"])  # fmt: skip
    if mapping is not None:
        from leadscore.features.sources.flat import load_flat, load_map

        file = Path(path)
        if not file.is_file():
            raise DataContractError([f"{file}: no such file (a flat file is one table file)"])
        return load_flat(file, load_map(Path(mapping)), config)
    return load_source(path, config), config


def load_source(path: Path | str, config: FeatureConfig | None = None) -> CrmData:
    """Load and validate a source folder: a leadforge bundle (its manifest.json), a Salesforce
    export (a `Lead` file and other objects by their API names), a HubSpot export (contacts
    with companies, deals, activities or property history) or canonical tables. A single
    file is a flat lead file: it needs a mapping (:func:`load_data`)."""
    root = Path(path)
    config = config or load_feature_config()
    if not root.exists():
        raise DataContractError([f"{root}: no such file or directory"])
    if root.is_file():
        raise DataContractError([
            f"{root}: a single file is a flat lead file: give its column mapping with --map "
            f"(draft one with `leadscore data map {root} --label COLUMN --out map.yaml`)"
        ])  # fmt: skip
    if is_leadforge_bundle(root):
        return load_leadforge(root, config)
    if is_salesforce_export(root):  # Lead.csv and other objects by their API names
        return load_salesforce(root, config)
    if is_hubspot_export(root):  # contacts + companies, deals, activities, history
        return load_hubspot(root, config)
    return load_canonical(root, config)
