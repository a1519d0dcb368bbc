"""The stages of annotation, one module each, in the order a protein goes through them.

:mod:`~retrieval.stages.embed` (the protein tower's vectors, cached) → :mod:`~retrieval.stages.recall`
(candidates from the function index and from homology hits, with their evidence) →
:mod:`~retrieval.stages.rerank` (which re-ranker scores which candidate, and the probabilities) →
:mod:`~retrieval.stages.lending` (functions no reference annotates borrow from the annotated ones
nearest in meaning) → :mod:`~retrieval.stages.select` (GO propagation, thresholds, top N, most
specific) → :mod:`~retrieval.stages.explain` (the evidence behind each reported score).
:class:`retrieval.annotate.Annotator` wires them.
"""
