# Skylight — the two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: ohif run test lint bench-cstore bench-stow bench-stow-1g bench-query bench-retrieve bench-worklist bench-viewer clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## The OHIF viewer (npm @ohif/app), rewritten for /viewer/; does nothing once installed.
ohif:
	infra/install-ohif.sh

## Embedded mode: SQLite, local files, tasks in-process; web on :8000, DICOM on :11112.
run: $(STAMP) ohif
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	$(PY) manage.py runall

## The whole suite on real PostgreSQL, Redis and SeaweedFS (started and stopped by the run).
test: $(STAMP) ohif
	infra/ensure-debian-packages.sh dcmtk chromium poppler-utils
	$(PY) -m tests.harness -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy config tenants studies worklists reports viewer
	$(PY) manage.py makemigrations --check --dry-run

## Benchmarks, side by side with Orthanc (see docs/performance.md).
bench-cstore bench-stow bench-stow-1g bench-query bench-retrieve bench-worklist: $(STAMP)
	infra/ensure-debian-packages.sh dcmtk orthanc orthanc-dicomweb
	$(PY) -m bench.run $(@:bench-%=%)

## The viewer: OHIF on Skylight and on Orthanc in headless Chromium (Skylight started here).
bench-viewer: $(STAMP) ohif
	infra/ensure-debian-packages.sh orthanc orthanc-dicomweb chromium
	$(PY) -m bench.run viewer --start-skylight disk

clean:
	rm -rf $(VENV) data var
