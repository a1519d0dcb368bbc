# Install (CPU torch first: a bare `torch` requirement would pull a multi-GB CUDA build), demo, tests.
PYTHON ?= python3
DATA ?= ../shared/data

.PHONY: install demo test
install:
	command -v diamond >/dev/null || (apt-get update -qq && apt-get install -y -qq diamond-aligner >/dev/null)
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	prot-retrieve naive examples/proteins.fasta \
	  --train-fasta $(DATA)/train_goa2019exp_7sp/sequences.fasta.gz \
	  --train-annotations $(DATA)/train_goa2019exp_7sp/annotations_leaf_exp.tsv.gz \
	  --obo $(DATA)/go/go-basic_2021-12-15.obo.gz | head -20

test: install
	$(PYTHON) -m pytest -m "slow or not slow"
