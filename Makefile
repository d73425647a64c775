# make demo: the main job on the shipped default parameter set.
# make test: the whole suite (model, simulation, probes on this kernel, notebooks, browser).
# Both create .venv on first use; nothing else is needed on a fresh Debian machine.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP_BASE := $(VENV)/.installed-demo
STAMP_TEST := $(VENV)/.installed-test
CHROMIUM   := /usr/bin/chromium
STRESS_NG  := /usr/bin/stress-ng

.PHONY: demo test venv bench clean notebooks

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP_BASE): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[notebooks]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test]'
	touch $@ $(STAMP_BASE)

# Debian's Chromium for the browser checks (a test tool's own browser download fails here).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	 else echo "note: chromium missing and not root; browser checks will skip"; fi

# Debian's stress-ng: the real program the tracer's test runs (costmodel trace, reduced form).
$(STRESS_NG):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null; \
	 else echo "note: stress-ng missing and not root; the traced real-program check will skip"; fi

# the parameter set calibrated on this project's reference machine (data/params/)
DEFAULT_PARAMS := data/params/kvm-amd-epyc-f26m2-2cpu-linux6.18.json

demo: $(STAMP_BASE)
	$(VENV)/bin/costmodel eval --params $(DEFAULT_PARAMS) --preset linux-6.18
	$(VENV)/bin/costmodel report --params $(DEFAULT_PARAMS) -o build/report.html --png build/charts --force --parents
	@echo "report: $(CURDIR)/build/report.html (charts as PNG/SVG in build/charts/)"

test: $(STAMP_TEST) | $(CHROMIUM) $(STRESS_NG)
	$(PY) -m pytest -q

# the three notebooks executed, as static HTML that needs no network (build/notebooks/)
notebooks: $(STAMP_BASE)
	$(VENV)/bin/jupyter nbconvert --config jupyter_nbconvert_config.py --to html --execute \
	    --output-dir build/notebooks notebooks/*.ipynb
	@echo "notebooks: $(CURDIR)/build/notebooks/ (readable offline)"

bench: $(STAMP_TEST)
	@for s in benchmarks/*.py; do echo "== $$s"; $(PY) $$s || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
