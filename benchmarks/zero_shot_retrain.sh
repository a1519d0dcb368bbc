#!/bin/bash
# The shipped recipe retrained without the held-out terms of benchmarks/data/held_out_terms.txt
# (docs/benchmarks.md#held-out-terms-protocols-a-and-b-of-issue-13). About 60 min on 2 cores.
#   benchmarks/zero_shot_retrain.sh runs/holdout                       # towers, references, hybrid
#   benchmarks/zero_shot_retrain.sh runs/holdout_iddrop --towers-only --id-dropout 0.2
#                                     # a lead: towers only, scored with the references of runs/holdout
#   benchmarks/zero_shot_retrain.sh runs/holdout_a --distill-teacher runs/unirep256 \
#     --distill-fasta retrieval/data/references/sequences.fasta.gz    # issue 31 (a), the whole recipe
set -euo pipefail
OUT=${1:?usage: zero_shot_retrain.sh OUTPUT [--towers-only] [extra train options]}
shift
TOWERS_ONLY=0
if [ "${1:-}" = "--towers-only" ]; then TOWERS_ONLY=1; shift; fi
D=${DATA:-../shared/data}
H=benchmarks/data/held_out_terms.txt
prot-retrieve train --fasta $D/train_goa2019exp_7sp/sequences.fasta.gz \
  --annotations $D/train_goa2019exp_7sp/annotations_leaf_exp.tsv.gz --obo $D/go/go-basic_2021-12-15.obo.gz \
  --exclude-tag cafa3_benchmark=1 --output $OUT/towers --epochs 5 --recall-k 300 --seed 0 --hold-out-terms $H "$@"
if [ $TOWERS_ONLY = 1 ]; then exit 0; fi
prot-retrieve build-reference $D/train_goa2019exp_7sp/sequences.fasta.gz $D/train_goa2019exp_7sp/annotations_leaf_exp.tsv.gz \
  --exclude-tag cafa3_benchmark=1 --obo $D/go/go-basic_2021-12-15.obo.gz --hold-out-terms $H -o $OUT/refs/exp7sp
prot-retrieve build-reference $D/train_cafa3ids_sp2014/sequences.fasta.gz \
  $D/train_cafa3ids_sp2014/annotations_sp2014_allevidence.tsv.gz \
  --exclude-tag cafa3_benchmark=1 --obo $D/go/go-basic_2021-12-15.obo.gz --hold-out-terms $H -o $OUT/refs/sp2014
prot-retrieve train-reranker --model $OUT/towers/model --reference $OUT/refs/exp7sp --reference $OUT/refs/sp2014 \
  --search diamond --source-dropout 0.25 --max-identity 80 --taxon-dropout 0.2 --epochs 8 --output $OUT/hybrid
