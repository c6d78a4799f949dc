"""Model quality on unseen leads, against leadforge's flat-table LightGBM yardstick.

For each (seed, difficulty) world:

1. generate (or reuse, cached under ``--work``) a training bundle of N leads and an evaluation
   bundle of M > N leads of the same world; the first N lead ids of the evaluation bundle repeat
   the training leads' static attributes, so only the ids beyond the training bundle count;
2. train with the repository's pipeline (``training.train.train_model``: snapshots, LightGBM,
   calibration, MLflow registration into a scratch SQLite store under ``--work``);
3. score the unseen evaluation leads that are still open ``--as-of-days`` after creation with
   ``leadscore.serving.batch.score_source`` (what ``leadscore score --as-of-days`` runs: leads
   already won or lost are not scoring cases);
4. train the flat-table yardstick (:func:`flat_baseline`: a default ``LGBMClassifier`` on the
   bundle's own flat task table, leakage-flagged columns dropped) and score the same leads, so
   both AUCs are computed on exactly the same rows and labels.

Reported per world: leads, positives, flat AUC, our AUC (calibrated, as served; also the raw
booster's), the difference, our ECE (10 equal-mass bins) and Brier on those leads, the ECE a
perfectly calibrated model would show on as many leads (sampling noise alone), the uncalibrated
ECE, and the training run's own test-slice metrics (``test_roc_auc``, ``logreg_test_roc_auc``).
A table goes to stdout, every number to ``WORK/results/NAME.json`` (rewritten after each world).
Nothing is judged: the exit status is 0 whenever every world ran.

``--calibration current crossfit ...`` compares calibrators on the same trained model and the
same unseen leads: ``current`` is the scorer as trained, the others replace its calibrator by
one cross-fitted over the whole labelled history (``training.calibration``): ``crossfit``,
blocked time folds, chosen by log loss; ``crossfit-ece``, chosen by ECE; ``crossfit-ref``,
fitted on the reference age's snapshots only; ``forward``, forward-chaining folds. Each gets
its AUC, ECE with a 90% bootstrap interval over leads, noise floor, the method chosen and the
cross-validation report; a second table compares them.

Bundles, training and scoring live in ``quality_worlds.py``; the yardstick and the metrics here.
Several ``--config`` files are each evaluated on every world (the bundles are loaded once per
world). ``--fast`` trains with the same functions as ``train_model`` but without MLflow, and reuses
the snapshots between configs: for sweeps; the default registers every model in a scratch store.

    python benchmarks/quality.py                                  # seeds 101 102, all tiers
    python benchmarks/quality.py --seeds 201 --difficulties intro --config my_training.yaml
    python benchmarks/quality.py --fast --config a.yaml b.yaml    # compare configs
    python benchmarks/quality.py --smoke --work /tmp/q            # one tiny world, for CI
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared benchmark modules

import common
import lightgbm as lgb
import numpy as np
import pandas as pd
from quality_worlds import (
    CALIBRATIONS,
    DIFFICULTIES,
    World,
    cross_fit,
    prepare_mlflow,
    variant_fit,
)
from sklearn.metrics import brier_score_loss, roc_auc_score

from leadscore.features.config import load_feature_config
from leadscore.training.calibration import CalibrationFit, bootstrap_ece
from leadscore.training.config import TrainingConfig, load_training_config
from leadscore.training.evaluate import ece

FLAT_LABEL = "converted_within_90_days"
# Columns the flat yardstick drops: leakage-flagged current state, ids, the label.
FLAT_DROP = frozenset({
    "current_stage", "is_sql", "total_touches_all", "account_id", "contact_id", "lead_id",
    "lead_created_at", FLAT_LABEL,
})  # fmt: skip


# -------------------------------------------------------------------------------------------
# the flat-table yardstick


def flat_table(root: Path) -> pd.DataFrame:
    """A bundle's flat task table (train, valid and test splits together)."""
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
    """`lead_id`, flat label and the yardstick's probability for every unseen evaluation lead:
    a default LightGBM trained on the training bundle's flat table."""
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


def ece_noise_floor(p: np.ndarray, draws: int = 200, q: float = 0.5) -> float:
    """The `q` quantile (median) of the ECE of a perfectly calibrated model on these
    probabilities (labels drawn from p): what sampling noise alone gives with this many leads."""
    rng = np.random.default_rng(0)
    return float(np.quantile([ece(rng.binomial(1, p), p) for _ in range(draws)], q))


def calibration_variants(
    scorer: Any, ts: Any, cfg: TrainingConfig, both: pd.DataFrame, variants: tuple[str, ...],
    bootstrap: int,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each calibration variant on the unseen leads `both`: AUC (flat label), ECE with its
    bootstrap interval, noise floor and Brier (our label), the method and how it was chosen."""
    y = both["flat_label"].to_numpy()
    final = both["label"].notna().to_numpy()
    ours_y = both["label"].to_numpy()[final].astype(int)
    leads = both["lead_id"].to_numpy()[final]
    raw = both["raw"].to_numpy()
    out: dict[str, dict[str, Any]] = {}
    fits: dict[str, CalibrationFit] = {}  # by fold scheme: criteria share one cross-fit
    for variant in variants:
        with common.stopwatch() as took:
            how = CALIBRATIONS[variant]
            if how is None:
                p, method, report = both["mql_probability"].to_numpy(), scorer.calibrator.method, {}
            else:
                scheme = how[0]
                if scheme not in fits:
                    fits[scheme] = cross_fit(scorer, ts, cfg, variant, bootstrap)
                fit = variant_fit(fits[scheme], variant, float(scorer.meta["reference_age"]))
                p, method = fit.calibrator(raw), fit.calibrator.method
                report = fits[scheme].report | {"variant": fit.report}
        low, high = bootstrap_ece(ours_y, p[final], leads, draws=bootstrap)
        out[variant] = {
            "calibrator": method,
            "auc": float(roc_auc_score(y, p)),
            "ece": ece(ours_y, p[final]),
            "ece_interval": [low, high],
            "ece_noise_floor": ece_noise_floor(p[final]),
            "ece_noise_p90": ece_noise_floor(p[final], q=0.9),  # a perfect model exceeds it 1 in 10
            "brier": float(brier_score_loss(ours_y, p[final])),
            "mean_p": float(np.mean(p[final])),
            "seconds": round(took.seconds, 1),
            "cross_fit": report,
            "p": p,  # taken out by the caller, into the scores file
        }
    return out


def evaluate_world(
    work: Path, world: World, flat: pd.DataFrame, cfg: TrainingConfig, days: float,
    run_name: str, fast: bool, variants: tuple[str, ...] = ("current",), bootstrap: int = 200,
) -> dict[str, Any]:  # fmt: skip
    """Train on the world's training bundle, score its unseen leads, compare with the yardstick's
    scores `flat` on the same leads; one result row (the scores kept under WORK/scores/RUN/)."""
    seed, difficulty = world.seed, world.difficulty
    with common.stopwatch() as training:
        scorer, m, ts = world.train(cfg, run_name, fast)
    ours, counts = world.score_unseen(scorer, days, cfg.label.horizon_days)
    both = ours.merge(flat, on="lead_id", how="inner", validate="one_to_one")
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
        "train_seconds": round(training.seconds, 1),
        "scores": str(scores_path),
    }
    row["delta"] = row["ours_auc"] - row["flat_auc"]
    row["calibrations"] = calibration_variants(scorer, ts, cfg, both, variants, bootstrap)
    if variants != ("current",):  # each variant's probabilities beside the served ones
        extra = {f"p_{v}": c.pop("p") for v, c in row["calibrations"].items()}
        both.assign(**extra).to_parquet(scores_path, index=False)
    else:
        row["calibrations"]["current"].pop("p")
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
    """The results as text, one line per world and a line of means."""
    cells = [[fmt.format(r[k]) for _, k, fmt in COLUMNS] for r in rows]
    if rows:
        cells.append(["mean", "", "", ""] + [
            fmt.format(float(np.mean([r[k] for r in rows])))
            if k not in ("best_iteration", "calibrator") else ""
            for _, k, fmt in COLUMNS[4:]
        ])  # fmt: skip
    return common.format_table([h for h, _, _ in COLUMNS], cells)


def calibration_table(rows: list[dict[str, Any]], variants: tuple[str, ...]) -> str:
    """Calibration variants side by side: AUC, ECE [90% interval] and method, per world."""
    heads = ["seed", "tier", "flat AUC", "floor"]
    for v in variants:
        heads += [f"AUC {v}", f"ECE {v} [90%]", "method"]
    cells = []
    for r in rows:
        line = [str(r["seed"]), r["difficulty"], f"{r['flat_auc']:.4f}",
                f"{r['ece_noise_floor']:.4f}"]  # fmt: skip
        for v in variants:
            c = r["calibrations"][v]
            lo, hi = c["ece_interval"]
            line += [f"{c['auc']:.4f}", f"{c['ece']:.4f} [{lo:.3f}, {hi:.3f}]", c["calibrator"]]
        cells.append(line)
    if rows:
        line = ["mean", "", f"{np.mean([r['flat_auc'] for r in rows]):.4f}",
                f"{np.mean([r['ece_noise_floor'] for r in rows]):.4f}"]  # fmt: skip
        for v in variants:
            cs = [r["calibrations"][v] for r in rows]
            worst = max(c["ece"] for c in cs)
            line += [f"{np.mean([c['auc'] for c in cs]):.4f}",
                     f"{np.mean([c['ece'] for c in cs]):.4f} (max {worst:.4f})", ""]  # fmt: skip
        cells.append(line)
    return common.format_table(heads, cells)


def write_results(
    args: argparse.Namespace, path: Path | None, cfg: TrainingConfig, name: str,
    rows: list[dict[str, Any]], work: Path,
) -> Path:  # fmt: skip
    """Every number of one run (config) so far, as JSON."""
    payload = {
        "name": name,
        "config": str(path or "config/training.yaml"),
        "training_config": cfg.model_dump(mode="json"),
        "fast": args.fast,
        "smoke": args.smoke,
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
        "calibrations": {
            v: {
                k: float(np.mean([r["calibrations"][v][k] for r in rows]))
                for k in ("auc", "ece", "brier")
            }
            for v in args.calibration
        },
    }
    return common.write_json(Path(args.out or work / "results" / f"{name}.json"), payload, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102])
    parser.add_argument("--difficulties", nargs="+", choices=DIFFICULTIES, default=DIFFICULTIES)
    parser.add_argument("--train-leads", type=int, default=5000)
    parser.add_argument("--eval-leads", type=int, default=10000)
    parser.add_argument("--as-of-days", type=float, default=30)
    parser.add_argument("--config", type=Path, nargs="+", default=[None],
                        help="training.yaml override(s), each evaluated on every world "
                             "(default: the packaged config)")  # fmt: skip
    parser.add_argument("--features-config", type=Path, help="features.yaml (default: packaged)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "quality",
                        help="bundles (cached), MLflow stores, scores")  # fmt: skip
    parser.add_argument("--name", help="run name (default: the config file's stem)")
    parser.add_argument("--out", type=Path, help="JSON results (default: WORK/results/NAME.json)")
    parser.add_argument("--fast", action="store_true",
                        help="train without MLflow (same functions; snapshots reused between "
                             "configs)")  # fmt: skip
    parser.add_argument("--calibration", nargs="+", choices=list(CALIBRATIONS),
                        default=["current"],
                        help="calibrators to compare on the same model and leads: current "
                             "(as trained), cross-fitted variants")  # fmt: skip
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        help="bootstrap draws for the ECE intervals (default: 200)",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="one small world: seed 101, intro, 400 + 400 leads")  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.difficulties = [101], ["intro"]
        args.train_leads, args.eval_leads = 400, 800
    if args.eval_leads <= args.train_leads:
        parser.error("--eval-leads must exceed --train-leads: only the leads beyond count")
    if len(args.config) > 1 and (args.name or args.out):
        parser.error("--name and --out take one config; with several, names are the file stems")
    return args


def main(argv: list[str] | None = None) -> int:
    """Evaluate every config on every world; print the tables, write the JSON."""
    args = parse_args(argv)
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
            flat = flat_baseline(world.train_root, world.eval_root)
            for path, cfg in configs:
                name = args.name or (path.stem if path else "default")
                row = evaluate_world(work, world, flat, cfg, args.as_of_days, name, args.fast,
                                     tuple(args.calibration), args.bootstrap)  # fmt: skip
                runs.setdefault(name, []).append(row)
                print(f"  {name:<24} flat {row['flat_auc']:.4f}  ours {row['ours_auc']:.4f} "
                      f"({row['delta']:+.4f})  ECE {row['ece']:.4f}  Brier {row['brier']:.4f}  "
                      f"iters {row['best_iteration']}  {row['train_seconds']:.0f} s",
                      flush=True)  # fmt: skip
                for v, c in row["calibrations"].items():
                    print(f"    {v:<14} AUC {c['auc']:.4f}  ECE {c['ece']:.4f} "
                          f"[{c['ece_interval'][0]:.3f}, {c['ece_interval'][1]:.3f}]  "
                          f"{c['calibrator']}  {c['seconds']:.0f} s", flush=True)  # fmt: skip
                # Written after every world, so an interrupted sweep keeps what it measured.
                write_results(args, path, cfg, name, runs[name], work)

    for path, cfg in configs:
        name = args.name or (path.stem if path else "default")
        print(f"\n{name}: {path or 'config/training.yaml'}  "
              f"model {json.dumps(cfg.model.model_dump(mode='json'))}  "
              f"ages {list(cfg.snapshot_ages)}")  # fmt: skip
        print(table(runs[name]))
        if args.calibration != ["current"]:
            print(
                f"\ncalibration on unseen leads (floor: ECE of a perfectly calibrated model on "
                f"as many leads)\n{calibration_table(runs[name], tuple(args.calibration))}"
            )
        print(f"results -> {write_results(args, path, cfg, name, runs[name], work)}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
