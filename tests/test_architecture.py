"""Dependency direction (design.md): features <- training, features <- serving, nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"features", "training", "serving", "leadscore", "notebooks", "benchmarks"}
ALLOWED = {
    "features": {"features"},
    "training": {"features", "training", "serving"},  # training imports the scorer to log it
    "serving": {"features", "serving"},
    "leadscore": {"features", "training", "serving", "leadscore"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_design_allows(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        wrong = _imports(path) - ALLOWED[package]
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_only_the_front_door_imports_all_three() -> None:
    for package in ("features", "training", "serving"):
        for path in (ROOT / package).rglob("*.py"):
            assert "leadscore" not in _imports(path), path
