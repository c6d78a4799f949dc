"""Where the config files are: ``LEADSCORE_CONFIG_DIR``, else the defaults shipped with the
package (`leadscore init DIR` writes editable copies). No parsing here: this module is read by
`leadscore --help`.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

CONFIG_ENV = "LEADSCORE_CONFIG_DIR"
CONFIG_FILES = (
    "features.yaml", "training.yaml", "sql_criteria.yaml", "routing.yaml", "titles.yaml",
    "salesforce.yaml", "hubspot.yaml", "handoff.yaml", "sla.yaml", "next_steps.yaml",
)


def packaged_config_dir() -> Path:
    """The default definitions shipped with the package (read-only: copy them to edit)."""
    return Path(str(files("leadscore.config")))


def default_config_dir() -> Path:
    """`$LEADSCORE_CONFIG_DIR`, else the packaged defaults."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else packaged_config_dir()


def config_file(name: str) -> Path:
    """The config file `name` in :func:`default_config_dir`."""
    return default_config_dir() / name
