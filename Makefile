# Silhouette: `make demo` and `make test` set everything up first (see scripts/setup).
CACHE ?= $(or $(SILHOUETTE_CACHE),$(HOME)/.cache/silhouette)
export SILHOUETTE_CACHE := $(CACHE)
export SAM_CLI_TELEMETRY := 0
VENV := $(CACHE)/venv/bin
PYTEST_ARGS ?=

.PHONY: setup demo test soak fuzz bench eval calibrate lint serve build clean

setup:
	@./scripts/setup

demo: setup
	$(VENV)/silhouette demo

# pytest exits 5 when it collects no test: that is a broken suite, not a pass.
test: setup
	@$(VENV)/python -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

# The load test with 300 simultaneous jobs instead of make test's 100 (about 15 minutes).
soak: setup
	SILHOUETTE_LOAD_JOBS=300 $(VENV)/python -m pytest tests/e2e/test_load.py $(PYTEST_ARGS)

# Ingest's decoder fed 5,000 mutated photos instead of make test's 150, new ones every run.
fuzz: setup
	SILHOUETTE_FUZZ_EXAMPLES=5000 $(VENV)/python -m pytest tests/unit/test_ingest_fuzz.py $(PYTEST_ARGS)

# Figures, not pass/fail: speed targets are read here, never asserted in tests. One table (and
# silhouette-out/bench.json), about 10 minutes; benchmarks/api_latency.py, pipeline_load.py,
# stage_memory.py, import_times.py, side_by_side.py and batch_scale.py still run on their own.
bench: setup
	$(VENV)/python benchmarks/bench.py

lint: setup
	$(VENV)/ruff check src tests functions benchmarks
	$(CACHE)/tools/bin/sam validate --lint --region us-east-1
	$(CACHE)/node/node_modules/.bin/asl-validator --json-path statemachine.asl.json
	$(CACHE)/node/node_modules/.bin/asl-validator --json-path batch.asl.json

# The labelled development set through the whole pipeline in quality and in fast mode:
# precision, recall, subject and framing accuracy and a contact sheet of every overlay for each
# (silhouette-out/eval/), then fast against quality (time per stage, mask agreement), then
# IS-Net's input size against its time and the cutout's agreement with 1024 x 1024.
eval: setup
	$(VENV)/python benchmarks/eval.py --quality quality $(EVAL_ARGS)
	$(VENV)/python benchmarks/eval.py --quality fast $(EVAL_ARGS)
	$(VENV)/python benchmarks/fast_vs_quality.py
	$(VENV)/python benchmarks/matting_sizes.py

# Refits person.confidence on the labelled set (src/silhouette/vision/person_calibration.json).
calibrate: setup
	$(VENV)/python benchmarks/calibrate_person.py

# Container images for AWS (needs Docker): the models go into the images from .build/models.
build: setup
	SILHOUETTE_CACHE=.build $(VENV)/silhouette fetch layers/models/manifest.json
	$(CACHE)/tools/bin/sam build

serve: setup
	$(VENV)/silhouette serve

clean:
	rm -rf silhouette-out .pytest_cache .build .aws-sam
