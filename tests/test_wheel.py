"""The wheel, installed as a user would: in a fresh virtualenv outside the checkout.

There it must expose only the `leadscore` namespace (no generic `features` / `training` /
`serving` import names), ship its default configs, start its CLI, and train and score on the
packaged defaults and the small canonical CSV fixture, without leadforge (an optional extra).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "small_crm"


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "LEADSCORE_", "VIRTUAL_ENV", "PYTHONPATH"))}  # fmt: skip
    # build from a copy of the sources: setuptools builds in-tree (build/), and a stale build/
    # in the checkout could put removed modules into the wheel
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "data", "site", ".typecheck", "*cache*", "*.db",
        "mlruns", "*.egg-info"))  # fmt: skip
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist),
          str(source)], tmp_path, env)  # fmt: skip
    (wheel,) = dist.glob("leadscore-*.whl")
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    py, bin_dir = target / "bin" / "python", target / "bin"
    _run([str(py), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path, env)

    home = tmp_path / "user"
    home.mkdir()
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}  # fmt: skip
    top = _run([str(py), "-c", "import importlib.util as u; print([n for n in "
                "('features', 'training', 'serving', 'config', 'leadforge') if u.find_spec(n)])"],
               home, env)  # fmt: skip
    assert top.strip() == "[]"  # no generic names, and the demo extra is not there
    assert "Usage: leadscore" in _run([str(bin_dir / "leadscore"), "--help"], home, env)

    _run([str(bin_dir / "leadscore"), "init", "my-config"], home, env)
    shipped = sorted(p.name for p in (home / "my-config").iterdir())
    # every definition in the source tree's config/ ships in the wheel and `init` writes it
    assert shipped == sorted(p.name for p in (ROOT / "config").glob("*.yaml"))
    env["LEADSCORE_CONFIG_DIR"] = str(home / "my-config")
    trained = _run([str(bin_dir / "leadscore"), "train", "--data", str(FIXTURE)], home, env)
    assert "lead-scoring v1 (challenger, champion)" in trained
    scored = _run([str(bin_dir / "leadscore"), "score", "--data", str(FIXTURE),
                   "--as-of-days", "30", "--out", "scores.parquet"], home, env)  # fmt: skip
    assert "scored" in scored and (home / "scores.parquet").is_file()

    # the store's Alembic migrations (and script.py.mako) ship as package data
    store = f"sqlite:///{home / 'handoffs.db'}"
    _run([str(bin_dir / "leadscore"), "store", "upgrade", "--store", store], home, env)
    report = subprocess.run([str(bin_dir / "leadscore"), "report", "handoff", "--store", store,
                             "--json"], cwd=home, env=env, capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert json.loads(report.stdout)["handoffs"] == 0

    missing = subprocess.run([str(bin_dir / "leadscore"), "data", "generate", "--out", "w"],
                             cwd=home, env=env, capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert missing.returncode == 2
    assert "pip install 'leadscore[demo]'" in missing.stderr
