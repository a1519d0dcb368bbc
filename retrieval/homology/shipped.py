"""The default references that come with the package: the two the shipped homology re-ranker reads.

```
retrieval/data/references/
  references.json        the references in the re-ranker's order, sources, licences
  sequences.fasta.gz     every reference protein once (the two share most of their proteins)
  exp7sp/  sp2014/       reference.json (pointing at ../sequences.fasta.gz) + labels.npz
```
Built from ``../shared/data`` by ``python -m train.shipped_data``.
"""
from __future__ import annotations

import json
from pathlib import Path

from index.errors import InputError
from retrieval.homology.reference import Reference

SHIPPED_REFERENCES = Path(__file__).resolve().parents[1] / "data" / "references"
MANIFEST = "references.json"


def shipped_manifest() -> dict:
    """The shipped references' manifest ({} when the package was installed without them)."""
    path = SHIPPED_REFERENCES / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_references() -> list[Reference]:
    """The shipped references, in the order the shipped homology re-ranker reads them."""
    manifest = shipped_manifest()
    if not manifest:
        raise InputError(f"the default references are not installed ({SHIPPED_REFERENCES}); give --reference "
                         "folders or --no-reference")
    return [Reference.load(SHIPPED_REFERENCES / entry["name"]) for entry in manifest["references"]]
