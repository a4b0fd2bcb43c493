# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
PYTHON313 ?= python3.13
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := demo-out
# Shared libraries bpy 5.0 loads (present on desktops, missing from slim images).
BPY_LIBS := libX11.so.6 libXrender.so.1 libXfixes.so.3 libXi.so.6 libxkbcommon.so.0 libxcb.so.1
BPY_APT := libx11-6 libxrender1 libxfixes3 libxi6 libxkbcommon0 libxcb1

.PHONY: setup demo test test-render-313 bench compare clean check-system

# A PYTHON given on the command line (or in the environment) must be the one the venv runs; the default never overrides an existing venv.
setup: $(VENV)/.installed
ifneq ($(origin PYTHON),file)
	@want=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	have=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	if [ "$$want" != "$$have" ]; then \
	  echo "$(VENV) runs Python $$have, not $$want ($(PYTHON)): remove it (rm -rf $(VENV)) or choose another with VENV=..."; exit 1; fi
endif

check-system:
	@missing=""; for lib in $(BPY_LIBS); do ldconfig -p | grep -q "$$lib" || missing="$$missing $$lib"; done; \
	if [ -n "$$missing" ]; then \
	  echo "bpy needs system libraries that are missing:$$missing"; \
	  echo "install them with:  sudo apt-get install -y $(BPY_APT)"; exit 1; fi
	@$(PYTHON) -c pass 2>/dev/null || { echo "bpy needs Python 3.11 (bpy 5.0) or 3.13 (bpy 5.1+): '$(PYTHON)' does not run (set PYTHON=/path/to/python; under pyenv, 'pyenv global 3.11 3.13' puts both on PATH)"; exit 1; }

$(VENV)/.installed: pyproject.toml | check-system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[render,dev]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import bpy, torch, torchvision, webdataset, iebench.render" 2>/dev/null || { echo "setup failed: see pip's messages above"; exit 1; }
	touch $@

demo: setup
	$(BIN)/iebench objects procedural $(DEMO)/objects --classes 10 --per-class 3 --seed 0
	$(BIN)/iebench render $(DEMO)/objects --out $(DEMO)/render --views 8 --resolution 128 --seed 0
	$(BIN)/iebench pack $(DEMO)/render $(DEMO)/shards --name demo
	$(BIN)/iebench verify $(DEMO)/shards
	$(BIN)/iebench show $(DEMO)/shards --out $(DEMO)/contact_sheet.png --objects 10 --views 8
	$(BIN)/iebench train --preset tiny --data $(DEMO)/shards --out $(DEMO)/run $$(test -f $(DEMO)/run/checkpoint.pt && echo --resume)
	$(BIN)/iebench eval $(DEMO)/run --data $(DEMO)/shards --random-init
	$(BIN)/iebench eval $(DEMO)/run --data $(DEMO)/shards
	$(BIN)/iebench report $(DEMO)/run --out $(DEMO)/report.md
	@echo
	@echo "objects:        $(DEMO)/objects  (ShapeNet layout, OBJ + MTL)"
	@echo "renders:        $(DEMO)/render   (image_<i>.jpg + latent_<i>.npy, _manifest.json)"
	@echo "shards:         $(DEMO)/shards   (WebDataset, _info.json, README.md dataset card, SIE split files)"
	@echo "contact sheet:  $(DEMO)/contact_sheet.png"
	@echo "SIE run:        $(DEMO)/run      (checkpoint.pt, metrics.jsonl, loss curve loss.png)"
	@echo "evaluation:     $(DEMO)/run/eval (eval.json, eval.md, plots); against the untrained floor: $(DEMO)/report.md/.png"

test: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The render extra on Python 3.13 (bpy 5.1+, numpy 2) in its own venv: the render and dataset tests.
test-render-313:
	$(MAKE) setup PYTHON=$(PYTHON313) VENV=.venv313
	.venv313/bin/python -m pytest -q tests/render tests/dataset

bench: setup
	$(BIN)/python bench/render_quality.py
	$(BIN)/python bench/render_passes.py
	$(BIN)/python bench/pack_throughput.py
	$(BIN)/python bench/loader_throughput.py
	$(BIN)/python bench/train_throughput.py --methods $$($(BIN)/iebench methods --compared)
	$(BIN)/python bench/eval_time.py
	$(BIN)/python bench/render_soak.py

compare: demo
	$(BIN)/iebench compare --data $(DEMO)/shards --out $(DEMO)/compare

clean:
	rm -rf $(DEMO) .pytest_cache
