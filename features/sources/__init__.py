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

__all__ = ["from_frames", "load_source"]


def load_source(path: Path | str, config: FeatureConfig | None = None) -> CrmData:
    """Load and validate a source: a leadforge bundle (detected by its manifest.json) or a
    directory of canonical CSV/Parquet tables."""
    root = Path(path)
    config = config or load_feature_config()
    if not root.exists():
        raise DataContractError([f"{root}: no such file or directory"])
    if is_leadforge_bundle(root):
        return load_leadforge(root, config)
    return load_canonical(root, config)
