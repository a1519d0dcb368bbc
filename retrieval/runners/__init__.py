"""Annotating a whole FASTA file into an output file, in resumable blocks: in this process
(:mod:`~retrieval.runners.local`) or on Ray Data (:mod:`~retrieval.runners.ray`), with the progress
kept beside the output (:mod:`~retrieval.runners.progress`)."""
