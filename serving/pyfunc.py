"""The MLflow pyfunc's runtime, logged as code (MLflow models-from-code): no pickle is written.

:mod:`~leadscore.serving.model_code` is the logged file: it imports this class from the
installed package and hands an instance to MLflow. Nothing here runs at import.

Its artifacts are a leadscore model directory (`serving.runtime.Scorer`): the booster in
LightGBM's text format and JSON for spec, encoding, calibrator, thresholds and tiers. Input:
one row per lead with `lead`, `account`, `contact`, `events` in the data contract's field
names; param `as_of` (ISO-8601; default: now). Output: `lead_id`, `mql_probability`, `tier`,
`is_mql`, `threshold`. A pyfunc loaded from a plain path keeps the thresholds it was logged
with; scorers loaded from a `models:/` URI by leadscore apply later policy changes.

The scorer's files are checked against their ``digests.json`` before LightGBM reads them. This
file and the code file run inside ``mlflow.pyfunc.load_model`` before any check of ours can:
whoever can write the artifact store can run code wherever the model is loaded that way;
``leadscore model verify`` checks a version against the registry's digests first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from leadscore.serving.digests import read_digests, verify
from leadscore.serving.lead_scoring import score_bodies
from leadscore.serving.runtime import Scorer


class LeadScoringModel(PythonModel):
    """Scores canonical leads with the same scorer the API and `leadscore score` use."""

    scorer: Scorer

    def load_context(self, context: Any) -> None:
        directory = Path(context.artifacts["scorer"])
        recorded = read_digests(directory)
        if recorded is not None:  # versions registered before 0.3.0 have none
            verify(directory, recorded)
        self.scorer = Scorer.from_dir(directory)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        as_of = (params or {}).get("as_of")
        bodies = []
        for record in model_input.to_dict(orient="records"):
            events = record.get("events")
            # served over REST the events column arrives as a numpy array, in-process a list
            body = {k: record.get(k) for k in ("lead", "account", "contact")}
            body["events"] = [] if events is None else list(events)
            if as_of:
                body["as_of"] = as_of
            bodies.append(body)
        scores = score_bodies(self.scorer, bodies)
        return pd.DataFrame(
            {
                "lead_id": [s["lead_id"] for s in scores],
                "mql_probability": [s["mql_probability"] for s in scores],
                "tier": [s["tier"] for s in scores],
                "is_mql": [s["is_mql"] for s in scores],
                "threshold": [s["threshold"] for s in scores],
            }
        )
