# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_REPS ?= 20
DEMO_SEED ?= 7

.PHONY: demo test fuzz bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/demining run scenarios/baseline.toml --replications $(DEMO_REPS) --seed $(DEMO_SEED)
	$(BIN)/demining run scenarios/more_machines.toml --replications $(DEMO_REPS) --seed $(DEMO_SEED)
	$(BIN)/demining run scenarios/better_maps.toml --replications $(DEMO_REPS) --seed $(DEMO_SEED)
	$(BIN)/demining run scenarios/imas_land_release.toml --replications $(DEMO_REPS) --seed $(DEMO_SEED) --condition-on scenarios/baseline.toml
	$(BIN)/demining compare baseline more_machines better_maps imas_land_release

test: $(VENV)/.installed
	./.ci/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The adversarial suite with many random examples (about 10 minutes on 2 cores); CI runs a fixed sample.
fuzz: $(VENV)/.installed
	ADVERSARIAL_PROFILE=fuzz $(BIN)/python -m pytest tests/test_adversarial.py -p no:cacheprovider -x

clean:
	rm -rf $(VENV) build *.egg-info

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench.py --json benchmarks/out/latest.json
