"""Source adapters: map a CRM export onto the canonical tables of the data contract.

A new CRM export is a new adapter here, never a change to the features.
"""

from __future__ import annotations

from pathlib import Path

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData
from leadscore.features.schema import DataContractError
from leadscore.features.sources.canonical import from_frames, load_canonical
from leadscore.features.sources.leadforge import is_leadforge_bundle, load_leadforge

__all__ = ["from_frames", "load_data", "load_source"]


def load_data(
    path: Path | str, mapping: Path | str | None = None, config: FeatureConfig | None = None
) -> tuple[CrmData, FeatureConfig]:
    """A source and the feature config to read it with: a flat file with its mapping (whose
    columns become the config's own fields), or any other source with `config`."""
    config = config or load_feature_config()
    if mapping is not None:
        from leadscore.features.sources.flat import load_flat, load_map

        file = Path(path)
        if not file.is_file():
            raise DataContractError([f"{file}: no such file (a flat file is one table file)"])
        return load_flat(file, load_map(Path(mapping)), config)
    return load_source(path, config), config


def load_source(path: Path | str, config: FeatureConfig | None = None) -> CrmData:
    """Load and validate a source: a leadforge bundle (detected by its manifest.json) or a
    directory of canonical CSV/Parquet tables."""
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
    return load_canonical(root, config)
