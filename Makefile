# Install (CPU torch first: a bare `torch` requirement would pull a multi-GB CUDA build), demo, tests.
PYTHON ?= python3

.PHONY: install demo test
install:
	command -v diamond >/dev/null || (apt-get update -qq && apt-get install -y -qq diamond-aligner >/dev/null)
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	prot-retrieve annotate examples/proteins.fasta --top 20

test: install
	$(PYTHON) -m pytest -m "slow or not slow"
