# leadscore: the README's commands. Each target creates .venv and installs the project if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= data/demo
SEED   ?= 42
LEADS  ?= 5000
FRESH  ?= 8000
DEMO_KEY ?= demo-key
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MPLBACKEND := Agg

.PHONY: install demo serve test test-fast lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job on embedded defaults: a demo CRM world, snapshots, a registered model, scores.
demo: $(STAMP)
	test -f $(DEMO)/bundle/manifest.json || \
		$(BIN)/leadscore data generate --seed $(SEED) --leads $(LEADS) --out $(DEMO)/bundle
	$(BIN)/leadscore features build --data $(DEMO)/bundle --as-of-days 30 \
		--out $(DEMO)/snapshot_30d.parquet
	$(BIN)/leadscore train --data $(DEMO)/bundle
	-$(BIN)/leadscore promote  # the gate may refuse a re-trained challenger: shown, not fatal
	test -f $(DEMO)/fresh/manifest.json || \
		$(BIN)/leadscore data generate --seed $(SEED) --leads $(FRESH) --out $(DEMO)/fresh
	$(BIN)/leadscore score --data $(DEMO)/fresh --as-of-days 30 --out $(DEMO)/scores.parquet
	$(BIN)/leadscore data lead --data $(DEMO)/fresh --lead-id lead_007777 --out $(DEMO)/lead.json
	LEADSCORE_DEMO_KEY=$(DEMO_KEY) $(BIN)/leadscore try-lead --lead $(DEMO)/lead.json
	@echo
	@echo "runs and models:  $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI)"
	@echo "serve the API:    make serve   (demo key: $(DEMO_KEY), docs at http://127.0.0.1:8000/docs)"

## The scoring API on the embedded defaults (the demo's champion); keeps running.
serve: $(STAMP)
	LEADSCORE_API_KEYS=$${LEADSCORE_API_KEYS:-$(DEMO_KEY):score+admin} $(BIN)/leadscore serve

## The full suite: lint, types, every test (slow ones included, benchmark smoke runs too).
test: lint typecheck
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	rm -rf .typecheck && mkdir -p .typecheck/leadscore
	for f in leadscore/*.py leadscore/py.typed; do ln -s ../../$$f .typecheck/leadscore/; done
	for d in features training serving config; do ln -s ../../$$d .typecheck/leadscore/$$d; done
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_snapshot.py
	$(BIN)/python benchmarks/bench_serving.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
