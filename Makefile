# Two entry points: `make run` (app on the embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_PLANS ?= ../shared/plans
PLANS_SOURCE := $(if $(wildcard $(SHARED_PLANS)/*.pdf),--from $(SHARED_PLANS),)
export HF_HUB_OFFLINE := 1

.PHONY: run test setup plans index browser clean

$(BIN)/essa-qa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build; an unpinned one would pull GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/essa-qa

plans: setup
	$(BIN)/essa-qa plans fetch --plans plans $(PLANS_SOURCE)

index: plans
	$(BIN)/essa-qa index --plans plans --index index

run: index
	$(BIN)/python app.py

browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium chromium-driver)

test: setup browser
	ESSA_QA_PLANS_DIR=$${ESSA_QA_PLANS_DIR:-$(SHARED_PLANS)} $(BIN)/pytest

clean:
	rm -rf $(VENV) index/CURRENT index/gen-* index/.tmp-*
