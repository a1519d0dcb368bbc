"""Readers and writers for the files users hand us (FASTA, annotation and prediction tables)."""
