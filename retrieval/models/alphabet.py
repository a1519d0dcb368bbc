"""The residue alphabet: normalisation of raw sequences and token ids for the compact protein tower.

Policy (documented in the README): sequences are upper-cased; a trailing stop ``*`` is removed;
the rare or ambiguous residues U (selenocysteine), O (pyrrolysine), B (D/N), Z (E/Q) and J (I/L)
become X; any other character (digits, gaps, punctuation, an inner ``*``) is an error.
"""
from __future__ import annotations

import numpy as np

STANDARD = "ACDEFGHIKLMNPQRSTVWY"
UNKNOWN = "X"
RARE_TO_UNKNOWN = "UOBZJ"
#: Token 0 pads; residues are 1..21 in the order of STANDARD + X.
PAD_ID = 0
VOCAB = STANDARD + UNKNOWN
VOCAB_SIZE = len(VOCAB) + 1

_TRANSLATE = str.maketrans(RARE_TO_UNKNOWN, UNKNOWN * len(RARE_TO_UNKNOWN))
_VALID = frozenset(VOCAB)
_LOOKUP = np.zeros(256, dtype=np.int64)
for _i, _c in enumerate(VOCAB, start=1):
    _LOOKUP[ord(_c)] = _i


def normalize(raw: str) -> str:
    """Upper-case, drop a trailing ``*`` and map U/O/B/Z/J to X (no validation: see :func:`first_invalid`)."""
    seq = raw.upper()
    if seq.endswith("*"):
        seq = seq[:-1]
    return seq.translate(_TRANSLATE)


def first_invalid(seq: str) -> int:
    """0-based position of the first character outside the alphabet of a normalised sequence, or -1."""
    if _VALID.issuperset(seq):
        return -1
    return next(i for i, c in enumerate(seq) if c not in _VALID)


def encode(seq: str) -> np.ndarray:
    """Token ids (1..21) of a normalised sequence."""
    return _LOOKUP[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
