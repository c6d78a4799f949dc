"""Model quality on unseen leads, against leadforge's flat-table LightGBM yardstick.

For each (seed, difficulty) world:

1. generate (or reuse, cached under ``--work``) a training bundle of N leads and an evaluation
   bundle of M > N leads of the same world; the first N lead ids of the evaluation bundle repeat
   the training leads' static attributes, so only the ids beyond the training bundle count;
2. train with the repository's pipeline (``training.train.train_model``: snapshots, LightGBM,
   calibration, MLflow registration into a scratch SQLite store under ``--work``);
3. score the unseen evaluation leads that are still open ``--as-of-days`` after creation
   (as ``leadscore score --as-of-days`` does: leads already won or lost are not scoring cases);
4. train leadforge's flat baseline (a default ``LGBMClassifier`` on the bundle's own flat task
   table, leakage-flagged columns dropped; the logic of ``flat_baseline.py``, reimplemented) and
   score the same leads, so both AUCs are computed on exactly the same rows and labels.

Reported per world: leads, positives, flat AUC, our AUC (calibrated, as served; also the raw
booster's), the difference, our ECE (10 equal-mass bins) and Brier on those leads, the ECE a
perfectly calibrated model would show on as many leads (sampling noise alone), the uncalibrated
ECE, and the training run's own test-slice metrics (``test_roc_auc``, ``logreg_test_roc_auc``).
A table goes to stdout, every number to ``WORK/results/NAME.json`` (rewritten after each world).
Nothing is judged: the exit status is 0 whenever every world ran.

Several ``--config`` files are each evaluated on every world (the bundles are loaded once per
world). ``--fast`` trains with the same functions as ``train_model`` but without MLflow, and reuses
the snapshots between configs: for sweeps; the default registers every model in a scratch store.

    python benchmarks/quality.py                                  # seeds 101 102, all tiers
    python benchmarks/quality.py --seeds 201 --difficulties intro --config my_training.yaml
    python benchmarks/quality.py --fast --config a.yaml b.yaml    # compare configs
    python benchmarks/quality.py --flat-tool ../shared/tools/flat_baseline.py   # cross-check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.metrics import brier_score_loss, roc_auc_score

from leadscore.features.config import FeatureConfig, load_feature_config
from leadscore.features.contract import CrmData
from leadscore.features.labels import ALREADY_LOST, ALREADY_REACHED, ALREADY_WON, label_snapshots
from leadscore.features.snapshot import as_of_after_creation, snapshot
from leadscore.features.sources import load_source
from leadscore.features.spec import build_spec
from leadscore.serving.runtime import Encoding, Scorer
from leadscore.training.config import TrainingConfig, load_training_config
from leadscore.training.data import TrainingSet, build_training_set
from leadscore.training.evaluate import ece
from leadscore.training.models import fit_logreg
from leadscore.training.train import evaluate_test, fit_scorer, train_model

RECIPE = "b2b_saas_procurement_v1"
DIFFICULTIES = ("intro", "intermediate", "advanced")
FLAT_LABEL = "converted_within_90_days"
# Columns flat_baseline.py drops: leakage-flagged current state, ids, the label.
FLAT_DROP = frozenset({
    "current_stage", "is_sql", "total_touches_all", "account_id", "contact_id", "lead_id",
    "lead_created_at", FLAT_LABEL,
})  # fmt: skip
CLOSED = frozenset({ALREADY_REACHED, ALREADY_WON, ALREADY_LOST})
EXPERIMENT = "quality"


# -------------------------------------------------------------------------------------------
# bundles


def bundle(work: Path, seed: int, difficulty: str, leads: int) -> Path:
    """A research_instructor bundle of one world, generated once and cached."""
    out = work / "bundles" / f"s{seed}_{difficulty}_n{leads}"
    if (out / "manifest.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    exe = Path(sys.executable).with_name("leadforge")
    cmd = [
        str(exe), "generate", "--recipe", RECIPE, "--seed", str(seed), "--difficulty", difficulty,
        "--n-leads", str(leads), "--mode", "research_instructor", "--out", str(tmp),
    ]  # fmt: skip
    print(f"  generating {out.name} ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (tmp / "manifest.json").is_file():
        sys.exit(f"leadforge generate failed for {out.name}:\n{done.stderr[-2000:]}")
    tmp.rename(out)
    print(f"  generated {out.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return out


# -------------------------------------------------------------------------------------------
# the flat baseline (the logic of /work/shared/tools/flat_baseline.py)


def flat_table(root: Path) -> pd.DataFrame:
    task = root / "tasks" / FLAT_LABEL
    return pd.concat(
        [pd.read_parquet(task / f"{s}.parquet") for s in ("train", "valid", "test")],
        ignore_index=True,
    )


def _matrix(d: pd.DataFrame, cols: list[str], ref: pd.DataFrame | None = None) -> pd.DataFrame:
    x = d[cols].copy()
    for c in cols:
        if str(x[c].dtype) in ("string", "object", "str"):
            x[c] = pd.Categorical(x[c], categories=None if ref is None else ref[c].cat.categories)
        else:
            x[c] = x[c].astype(float)
    return x


def flat_baseline(train_root: Path, eval_root: Path) -> pd.DataFrame:
    """`lead_id`, flat label and the baseline's probability for every unseen evaluation lead."""
    a, b = flat_table(train_root), flat_table(eval_root)
    b = b[~b["lead_id"].isin(a["lead_id"])]
    cols = [c for c in a.columns if c not in FLAT_DROP]
    xa = _matrix(a, cols)
    xb = _matrix(b, cols, xa)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lgb.LGBMClassifier(verbose=-1).fit(xa, a[FLAT_LABEL].astype(int))
        p = model.predict_proba(xb)[:, 1]
    return pd.DataFrame({
        "lead_id": b["lead_id"].astype(str).to_numpy(),
        "flat_label": b[FLAT_LABEL].astype(int).to_numpy(),
        "flat_p": p,
    })  # fmt: skip


def run_flat_tool(tool: Path, train_root: Path, eval_root: Path, scores: Path) -> dict[str, Any]:
    """Cross-check: run the shared yardstick script itself on our scores file."""
    cmd = [sys.executable, str(tool), str(train_root), str(eval_root), str(scores)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    text = done.stdout.strip()
    found = re.search(
        r"leads=(\d+) positives=(\d+) flat-baseline AUC=([\d.]+)(?: yours=([\d.]+))?", text
    )
    if not found:
        return {"error": (done.stderr or text)[-500:]}
    return {
        "leads": int(found[1]), "positives": int(found[2]), "flat_auc": float(found[3]),
        "ours_auc": float(found[4]) if found[4] else None,
    }  # fmt: skip


# -------------------------------------------------------------------------------------------
# training and scoring with the repository's pipeline


def prepare_mlflow(work: Path, name: str) -> None:
    """A scratch SQLite store and artifact root under `work`; never the repository's."""
    store = work / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{(store / f'{name}.db').resolve()}"
    os.environ["MLFLOW_TRACKING_URI"] = uri  # training/tracking.py reads it
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    if client.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (store / f"{name}.artifacts").resolve()
        client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())


def score_unseen(
    crm: CrmData, scorer: Scorer, seen: set[str], days: float, horizon: float, target: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Scores, raw scores and labels of the unseen leads still open `days` after creation."""
    leads = crm.leads
    unseen = ~leads["lead_id"].astype(str).isin(seen)
    crm.leads = leads[unseen.to_numpy()].reset_index(drop=True)
    try:
        when = as_of_after_creation(crm.leads, days).reset_index(drop=True)
        rows = snapshot(crm, scorer.spec, when)
        created = crm.leads.set_index("lead_id")["created_at"]
        labels = label_snapshots(
            rows, crm.outcomes, created, target=target,  # type: ignore[arg-type]
            horizon_days=horizon, observation_end=crm.observation_end, has_outcome_dates=True,
        )  # fmt: skip
    finally:
        crm.leads = leads
    reason = labels["excluded"]
    counts = {str(k): int(v) for k, v in reason.value_counts().items()}
    counts["unseen"] = len(rows)
    open_ = ~reason.isin(CLOSED).fillna(False).to_numpy(dtype=bool)
    rows, labels = rows[open_].reset_index(drop=True), labels[open_].reset_index(drop=True)
    scored = scorer.score_frame(rows)
    frame = pd.DataFrame({
        "lead_id": rows["lead_id"].astype(str).to_numpy(),
        "mql_probability": scored["mql_probability"].to_numpy(),
        "raw": scorer.raw_frame(rows),
        "label": labels["label"].astype("float64").to_numpy(),  # NaN: not final
    })  # fmt: skip
    return frame, counts


def ece_noise_floor(p: np.ndarray, draws: int = 200) -> float:
    """Median ECE of a perfectly calibrated model on these probabilities (labels drawn from p):
    what sampling noise alone gives with this many leads."""
    rng = np.random.default_rng(0)
    return float(np.median([ece(rng.binomial(1, p), p) for _ in range(draws)]))


class World:
    """One (seed, difficulty): bundles, loaded sources and what does not depend on the config."""

    def __init__(self, work: Path, seed: int, difficulty: str, n_train: int, n_eval: int,
                 fcfg: FeatureConfig):  # fmt: skip
        self.seed, self.difficulty, self.fcfg = seed, difficulty, fcfg
        self.train_root = bundle(work, seed, difficulty, n_train)
        self.eval_root = bundle(work, seed, difficulty, n_eval)
        self.crm = load_source(self.train_root, fcfg)
        self.eval_crm = load_source(self.eval_root, fcfg)
        self.seen = set(self.crm.leads["lead_id"].astype(str))
        self.flat = flat_baseline(self.train_root, self.eval_root)
        self._sets: dict[str, tuple[TrainingSet, Any]] = {}

    def training_set(self, cfg: TrainingConfig) -> tuple[TrainingSet, Any]:
        """(TrainingSet, logistic-regression baseline), cached by what builds them."""
        key = json.dumps(
            [cfg.label.model_dump(mode="json"), list(cfg.snapshot_ages),
             cfg.split.model_dump(mode="json"), cfg.min_train_positives]
        )  # fmt: skip
        if key not in self._sets:
            ts = build_training_set(self.crm, build_spec(self.fcfg), cfg)
            train = ts.part("train")
            encoding = Encoding.learn(ts.spec, train)
            logreg = fit_logreg(encoding.frame(train), train["label"].to_numpy(), encoding)
            self._sets[key] = (ts, logreg)
        return self._sets[key]


def train_fast(world: World, cfg: TrainingConfig) -> tuple[Scorer, dict[str, float], TrainingSet]:
    """`train_model` without MLflow (its own `fit_scorer` and `evaluate_test`), nothing
    registered. For sweeps: snapshots and the logistic-regression baseline are reused."""
    ts, logreg = world.training_set(cfg)
    fitted = fit_scorer(ts, world.fcfg, cfg, logreg=logreg, progress=lambda _msg: None)
    metrics, _ = evaluate_test(fitted.scorer, ts.part("test"), logreg, fitted.reference_age)
    metrics["best_iteration"] = float(fitted.scorer.booster.best_iteration)
    return fitted.scorer, metrics, ts


def evaluate_world(
    work: Path,
    world: World,
    cfg: TrainingConfig,
    days: float,
    run_name: str,
    fast: bool,
    flat_tool: Path | None,
) -> dict[str, Any]:
    seed, difficulty = world.seed, world.difficulty
    started = time.perf_counter()
    if fast:
        scorer, m, ts = train_fast(world, cfg)
    else:
        result = train_model(
            world.crm, world.fcfg, cfg, model_name=f"quality-{run_name}-s{seed}-{difficulty}",
            experiment=EXPERIMENT, progress=lambda _msg: None,
        )  # fmt: skip
        scorer, m, ts = result.scorer, result.metrics, result.training_set
    train_seconds = time.perf_counter() - started

    ours, counts = score_unseen(
        world.eval_crm, scorer, world.seen, days, cfg.label.horizon_days, cfg.label.target
    )
    both = ours.merge(world.flat, on="lead_id", how="inner", validate="one_to_one")
    if len(both) != len(ours):
        raise RuntimeError(
            f"s{seed} {difficulty}: {len(ours) - len(both)} scored leads missing from the flat "
            "task table"
        )
    scores_dir = work / "scores" / run_name
    scores_dir.mkdir(parents=True, exist_ok=True)
    scores_path = scores_dir / f"s{seed}_{difficulty}.parquet"
    both.to_parquet(scores_path, index=False)

    y = both["flat_label"].to_numpy()
    final = both["label"].notna().to_numpy()
    ours_y = both["label"].to_numpy()[final].astype(int)
    p, raw = both["mql_probability"].to_numpy(), both["raw"].to_numpy()
    ranges = ts.split_ranges
    row: dict[str, Any] = {
        "seed": seed,
        "difficulty": difficulty,
        "n_eval": len(both),
        "positives": int(y.sum()),
        "flat_auc": float(roc_auc_score(y, both["flat_p"])),
        "ours_auc": float(roc_auc_score(y, p)),
        "ours_auc_raw": float(roc_auc_score(y, raw)),  # the booster before calibration
        # Our label (won within the horizon); the flat label is leadforge's.
        "label_agreement": float(np.mean(ours_y == y[final])),
        "not_final": int((~final).sum()),
        "ours_auc_own_label": float(roc_auc_score(ours_y, p[final])),
        "ece": ece(ours_y, p[final]),
        "ece_uncalibrated": ece(ours_y, raw[final]),
        "ece_noise_floor": ece_noise_floor(p[final]),
        "brier": float(brier_score_loss(ours_y, p[final])),
        "mean_p": float(np.mean(p[final])),
        "positive_rate": float(np.mean(ours_y)),
        "test_roc_auc": m["test_roc_auc"],
        "logreg_test_roc_auc": m["logreg_test_roc_auc"],
        "test_ece": m["test_ece"],
        "best_iteration": int(m["best_iteration"]),
        "calibrator": scorer.calibrator.method,
        "calib_snapshots": ranges["calib"]["snapshots"],
        "calib_positives": ranges["calib"]["positives"],
        "eval_exclusions": counts,
        "train_seconds": round(train_seconds, 1),
        "scores": str(scores_path),
    }
    row["delta"] = row["ours_auc"] - row["flat_auc"]
    if flat_tool is not None:
        tool = run_flat_tool(flat_tool, world.train_root, world.eval_root, scores_path)
        row["flat_tool"] = tool
        if "error" not in tool and (
            tool["leads"] != row["n_eval"] or abs(tool["ours_auc"] - row["ours_auc"]) > 5e-4
        ):
            print(f"  WARNING: flat tool disagrees on s{seed} {difficulty}: {tool}", flush=True)
    return row


# -------------------------------------------------------------------------------------------
# report


COLUMNS = [
    ("seed", "seed", "{}"), ("tier", "difficulty", "{}"), ("n", "n_eval", "{:,}"),
    ("pos", "positives", "{}"), ("flat AUC", "flat_auc", "{:.4f}"),
    ("ours AUC", "ours_auc", "{:.4f}"), ("delta", "delta", "{:+.4f}"),
    ("raw AUC", "ours_auc_raw", "{:.4f}"), ("ECE", "ece", "{:.4f}"),
    ("ECE floor", "ece_noise_floor", "{:.4f}"),
    ("ECE raw", "ece_uncalibrated", "{:.4f}"), ("Brier", "brier", "{:.4f}"),
    ("mean p", "mean_p", "{:.3f}"), ("rate", "positive_rate", "{:.3f}"),
    ("test AUC", "test_roc_auc", "{:.4f}"), ("LR test", "logreg_test_roc_auc", "{:.4f}"),
    ("iters", "best_iteration", "{}"), ("calib", "calibrator", "{}"),
]  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[h for h, _, _ in COLUMNS]]
    cells += [[fmt.format(r[k]) for _, k, fmt in COLUMNS] for r in rows]
    if rows:
        mean = ["mean", "", "", ""] + [
            fmt.format(float(np.mean([r[k] for r in rows])))
            if k not in ("best_iteration", "calibrator") else ""
            for _, k, fmt in COLUMNS[4:]
        ]  # fmt: skip
        cells.append(mean)
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_results(
    args: argparse.Namespace,
    path: Path | None,
    cfg: TrainingConfig,
    name: str,
    rows: list[dict[str, Any]],
    work: Path,
) -> Path:
    out = Path(args.out or work / "results" / f"{name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "config": str(path or "config/training.yaml"),
        "training_config": cfg.model_dump(mode="json"),
        "fast": args.fast,
        "train_leads": args.train_leads,
        "eval_leads": args.eval_leads,
        "as_of_days": args.as_of_days,
        "python": platform.python_version(),
        "lightgbm": lgb.__version__,
        "rows": rows,
        "mean": {
            k: float(np.mean([r[k] for r in rows]))
            for k in ("flat_auc", "ours_auc", "ours_auc_raw", "delta", "ece", "brier")
        },
    }
    out.write_text(json.dumps(payload, indent=1, default=str))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    parser.add_argument("--difficulties", nargs="+", choices=DIFFICULTIES, default=DIFFICULTIES)
    parser.add_argument("--train-leads", type=int, default=5000)
    parser.add_argument("--eval-leads", type=int, default=10000)
    parser.add_argument("--as-of-days", type=float, default=30)
    parser.add_argument(
        "--config", type=Path, nargs="+", default=[None],
        help="training.yaml override(s), each evaluated on every world (default: config/)",
    )  # fmt: skip
    parser.add_argument("--features-config", type=Path, help="features.yaml (default: config/)")
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/quality"), help="bundles, MLflow stores, scores"
    )
    parser.add_argument("--name", help="run name (default: the config file's stem)")
    parser.add_argument("--out", type=Path, help="JSON results (default: WORK/results/NAME.json)")
    parser.add_argument(
        "--fast", action="store_true",
        help="train without MLflow (same functions; snapshots reused between configs)",
    )  # fmt: skip
    parser.add_argument(
        "--flat-tool", type=Path, help="also run this flat_baseline.py on our scores (cross-check)"
    )
    args = parser.parse_args(argv)
    if args.eval_leads <= args.train_leads:
        parser.error("--eval-leads must exceed --train-leads: only the leads beyond count")
    if len(args.config) > 1 and (args.name or args.out):
        parser.error("--name and --out take one config; with several, names are the file stems")

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="mlflow")
    os.environ.setdefault("MPLBACKEND", "Agg")
    work = args.work.resolve()
    fcfg = load_feature_config(args.features_config)
    configs = [(c, load_training_config(c)) for c in args.config]
    if not args.fast:
        prepare_mlflow(work, f"quality-{int(time.time())}")

    runs: dict[str, list[dict[str, Any]]] = {}
    started = time.perf_counter()
    for seed in args.seeds:
        for difficulty in args.difficulties:
            print(f"[s{seed} {difficulty}]", flush=True)
            world = World(work, seed, difficulty, args.train_leads, args.eval_leads, fcfg)
            for path, cfg in configs:
                name = args.name or (path.stem if path else "default")
                row = evaluate_world(
                    work, world, cfg, args.as_of_days, name, args.fast, args.flat_tool
                )
                runs.setdefault(name, []).append(row)
                print(f"  {name:<24} flat {row['flat_auc']:.4f}  ours {row['ours_auc']:.4f} "
                      f"({row['delta']:+.4f})  ECE {row['ece']:.4f}  Brier {row['brier']:.4f}  "
                      f"iters {row['best_iteration']}  {row['train_seconds']:.0f} s",
                      flush=True)  # fmt: skip
                # Written after every world, so an interrupted sweep keeps what it measured.
                write_results(args, path, cfg, name, runs[name], work)

    for path, cfg in configs:
        name = args.name or (path.stem if path else "default")
        print(f"\n{name}: {path or 'config/training.yaml'}  "
              f"model {json.dumps(cfg.model.model_dump(mode='json'))}  "
              f"ages {list(cfg.snapshot_ages)}")  # fmt: skip
        print(table(runs[name]))
        print(f"results -> {write_results(args, path, cfg, name, runs[name], work)}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
