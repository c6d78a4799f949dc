# leadscore: the README's commands. Each target creates .venv and installs what it needs:
# `make demo` the package with the [demo] extra, the test targets the [dev] extra too.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_STAMP := $(VENV)/.installed-demo
STAMP  := $(VENV)/.installed-dev
PIP    := $(BIN)/python -m pip install --progress-bar on
DEMO   ?= data/demo
SEED   ?= 42
LEADS  ?= 5000
FRESH  ?= 8000
DEMO_KEY ?= demo-key
DEMO_STORE = sqlite:///$(DEMO)/handoffs.db
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MPLBACKEND := Agg

.PHONY: install demo serve test test-fast lint typecheck docs bench bench-scale screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	@echo "installing leadscore and its demo data generator into $(VENV) (first run: a few minutes)"
	$(PIP) -e '.[demo]'
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing leadscore with its test and docs tools into $(VENV)"
	$(PIP) -e '.[dev,docs,spark]'
	touch $(STAMP) $(DEMO_STAMP)

install: $(STAMP)

## The main job on embedded defaults: a demo CRM world, snapshots, a registered model, scores.
demo: $(DEMO_STAMP)
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
	LEADSCORE_DEMO_KEY=$(DEMO_KEY) LEADSCORE_STORE_URL=$(DEMO_STORE) \
		$(BIN)/leadscore try-lead --lead $(DEMO)/lead.json
	@echo
	@echo "== four weeks of handoffs: reps answer through the API, outcomes from the bundle =="
	rm -f $(DEMO)/handoffs.db $(DEMO)/handoffs.db-wal $(DEMO)/handoffs.db-shm
	$(BIN)/leadscore handoff simulate --data $(DEMO)/fresh --store $(DEMO_STORE) \
		> $(DEMO)/simulated_until.txt
	$(BIN)/leadscore report handoff --store $(DEMO_STORE) --since 60d --now "$$(cat $(DEMO)/simulated_until.txt)" \
		--brief --html $(DEMO)/handoff_report.html
	@echo
	@echo "== the quarterly review: the world's next quarter against the champion's training =="
	test -f $(DEMO)/next/manifest.json || \
		$(BIN)/leadscore data shift --data $(DEMO)/fresh --out $(DEMO)/next --days 91
	$(BIN)/leadscore review --data $(DEMO)/next --reference $(DEMO)/bundle \
		--html $(DEMO)/review.html --json $(DEMO)/review.json
	@echo
	@echo "runs and models:  $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI)"
	@echo "serve the API:    make serve   (demo key: $(DEMO_KEY), docs at http://127.0.0.1:8000/docs)"

## The scoring API on the embedded defaults (the demo's champion); keeps running.
serve: $(DEMO_STAMP)
	LEADSCORE_API_KEYS=$${LEADSCORE_API_KEYS:-$(DEMO_KEY):score+admin} $(BIN)/leadscore serve

## The full suite: lint, types, the docs site, every test (slow ones and benchmark smoke runs too).
test: lint typecheck docs
	$(BIN)/python -m pytest --durations=10

test-fast: $(STAMP)
	HYPOTHESIS_PROFILE=fast $(BIN)/python -m pytest -m "not slow" -x -q --durations=10

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	rm -rf .typecheck && mkdir -p .typecheck/leadscore
	for f in leadscore/*.py leadscore/py.typed; do ln -s ../../$$f .typecheck/leadscore/; done
	for d in features training serving config; do ln -s ../../$$d .typecheck/leadscore/$$d; done
	$(BIN)/mypy

## The documentation site (docs/ -> site/); reference pages are generated from the code.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d site

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_snapshot.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_sources.py
	$(BIN)/python benchmarks/bench_handoffs.py
	$(BIN)/python benchmarks/bench_pages.py

## The scaling curve (100k, 1M, 10M synthetic leads; local, DuckDB, Spark): long, not in `make test`.
## Its data is cached in data/bench-scale/ (10M leads: about 4 GB). SCALE_ARGS="--sizes 100k" etc.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py $(SCALE_ARGS)

## The docs' screenshots in docs/img/: the rep's queue and lead card, the handoff report. Needs
## Chromium (`source .ci/services.sh`); CI=true makes a missing one fail instead of skipping.
screenshots: $(STAMP)
	CI=true LEADSCORE_SCREENSHOT_DIR=docs/img $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/serving/test_pages_browser.py::test_a_rep_signs_in_reads_a_card_and_rejects_the_lead \
		tests/serving/test_report_browser.py::test_screenshot_for_the_docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .typecheck site
