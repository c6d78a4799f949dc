"""The layout design.md asks for, checked from the source.

* code imports our packages only by their installed names (``leadscore.features``, ...), never
  as generic top-level names;
* dependency direction: features <- training, features <- serving; serving never imports
  training; training takes from serving only what a model needs at predict time;
* nothing imports the models-from-code file, the notebooks or the benchmarks;
* every folder with an ``__init__.py`` is a package the wheel ships.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("features", "training", "serving")
GENERIC = {"features", "training", "serving", "config", "notebooks", "benchmarks"}
# second part of `leadscore.X...` each package may import
ALLOWED = {
    "features": {"features"},
    "training": {"features", "training", "serving"},
    "serving": {"features", "serving"},
    "leadscore": {"features", "training", "serving", "config"},
}
# what training may take from serving: the runtime it saves, and the registry's names
# training assembles what serving runs (runtime, linear), registers it, and the quarterly
# review reads the handoff store's report (store, sla)
TRAINING_FROM_SERVING = {"runtime", "linear", "registry", "loader", "mlflow_schema", "examples",
                         "digests", "store", "sla"}  # fmt: skip
NEVER_IMPORTED = {"leadscore.serving.model_code"}


def imports(path: Path) -> set[str]:
    """Absolute module names one file imports."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def violations(path: Path, package: str) -> list[str]:
    """What one file of `package` imports that the design forbids."""
    wrong = []
    for name in sorted(imports(path)):
        parts = name.split(".")
        if parts[0] in GENERIC:
            wrong.append(f"{name}: a generic top-level name; import it as leadscore.{name}")
        elif parts[0] == "leadscore" and len(parts) > 1 and parts[1] in ALLOWED["leadscore"]:
            if parts[1] not in ALLOWED[package]:
                wrong.append(f"{name}: {package} must not import leadscore.{parts[1]}")
            elif (
                package == "training"
                and parts[1] == "serving"
                and len(parts) > 2
                and parts[2] not in TRAINING_FROM_SERVING
            ):
                wrong.append(f"{name}: training takes only {sorted(TRAINING_FROM_SERVING)}")
        if any(name == n or name.startswith(n + ".") for n in NEVER_IMPORTED):
            wrong.append(f"{name}: executed by MLflow, never imported")
    return wrong


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("package", [*PACKAGES, "leadscore"])
def test_package_imports_only_what_design_allows(package: str) -> None:
    found = {
        str(path.relative_to(ROOT)): wrong
        for path in _sources(package)
        if (wrong := violations(path, package))
    }
    assert not found


def test_front_door_alone_imports_all_three() -> None:
    for package in PACKAGES:
        for path in _sources(package):
            assert not any(n == "leadscore.cli" for n in imports(path)), path


def test_nothing_imports_notebooks_benchmarks_or_the_model_code() -> None:
    for folder in (*PACKAGES, "leadscore", "tests", "benchmarks"):
        for path in _sources(folder):
            names = imports(path)
            bad = {n for n in names if n.split(".")[0] in {"notebooks", "benchmarks"}}
            bad |= {n for n in names if n.startswith("leadscore.serving.model_code")}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("serving", "from leadscore.training.train import train_model\n", "must not import"),
        ("features", "import leadscore.serving.runtime\n", "must not import"),
        ("training", "from leadscore.serving.api.app import create_app\n", "takes only"),
        ("serving", "from features.spec import FeatureSpec\n", "generic top-level name"),
        ("training", "from leadscore.serving import model_code\n", "never imported"),
    ],
)
def test_a_planted_bad_import_is_caught(
    tmp_path: Path, package: str, source: str, expected: str
) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(source)
    wrong = violations(planted, package)
    assert any(expected in w for w in wrong), wrong


def test_every_package_folder_is_in_the_wheel() -> None:
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ])
    on_disk = {"leadscore", "leadscore.config"}
    for package in PACKAGES:
        for init in (ROOT / package).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT).parts
            on_disk.add(".".join(("leadscore", *parts)))
    assert declared == on_disk
