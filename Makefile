# photo3d: the two commands of the README, and the tools around them.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
SITE    = $(VENV)/lib/python3.11/site-packages
STAMP   = $(VENV)/.installed

.PHONY: demo test test-fast test-compat lint extension bench eval depth-model clean

# A virtual environment with the pinned dependencies, and the repository root made
# importable as the package `photo3d` (the root *is* the Blender extension package,
# so it is linked in rather than copied: edits take effect at once).
$(STAMP): requirements.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# MediaPipe only for its two portrait networks (read in place by OpenCV, never
	# imported): without its dependencies (JAX, matplotlib, a second OpenCV).
	$(PY) -m pip install -q --no-deps mediapipe==0.10.21
	mkdir -p $(VENV)/src
	ln -sfn "$(CURDIR)" $(VENV)/src/photo3d
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'photo3d-src.pth').write_text(r'$(CURDIR)/$(VENV)/src' + '\n')"
	$(PY) -c "import photo3d, bpy, cv2, scipy; print('photo3d', photo3d.__version__, 'with Blender', bpy.app.version_string)"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

# Lint and import order (pyproject.toml). The code is not in ruff's format style, so
# `ruff format` is not enforced.
lint: $(STAMP)
	$(PY) -m ruff check .

# The test suite on the other supported Blender releases (4.2 LTS, 5.0).
test-compat: $(STAMP)
	bash tools/test_compat.sh

extension: $(STAMP)
	$(PY) tools/build_extension.py --out build

bench: $(STAMP)
	$(PY) -m photo3d bench tests/data/portrait.jpg

eval: $(STAMP)
	bash ../shared/eval/nvs.sh

# Render training data, train and export photo3d's own depth model (hours; GPU advised).
IMAGES ?= 4000
STEPS  ?= 20000
depth-model: $(STAMP)
	bash tools/build_depth_model.sh $(IMAGES) $(STEPS)

clean:
	rm -rf out build .pytest_cache .ruff_cache
