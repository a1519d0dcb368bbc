"""The whole retriever as one folder: a manifest and one subfolder per part.

```
model/
  retriever.json        parts, fingerprint, versions, training record (data, command, seed, time)
  protein_encoder/      config.json + model.safetensors [+ adapter/]
  text_encoder/         config.json + model.safetensors + terms.txt [+ adapter/]
  reranker/             config.json + model.safetensors
  homology_reranker/    (optional) a re-ranker that also reads homology transfer features
```
The annotator uses ``homology_reranker`` when homology evidence is available (a reference was
given) and ``reranker`` otherwise, so one model serves both cases with the ranker trained for it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from index.atomic import atomic_folder
from index.errors import InputError
from retrieval.models.pretrained import versions
from retrieval.models.protein_encoder import ProteinEncoder
from retrieval.models.reranker import FusionReranker
from retrieval.models.text_encoder import TextEncoder

MANIFEST = "retriever.json"
PARTS = {"protein_encoder": ProteinEncoder, "text_encoder": TextEncoder, "reranker": FusionReranker}
OPTIONAL_PARTS = {"homology_reranker": FusionReranker}
#: The default model shipped inside the package.
DEFAULT_MODEL = Path(__file__).parents[1] / "data" / "default_model"


class RetrievalModel:
    """Protein tower, function tower and fusion re-ranker, saved and loaded together.

    Args:
        protein_encoder, text_encoder, reranker: the parts.
        homology_reranker: optional re-ranker trained with homology features.
        info: free-form record saved in the manifest (training data, command, seed, metrics).
    """

    def __init__(self, protein_encoder: ProteinEncoder, text_encoder: TextEncoder, reranker: FusionReranker,
                 homology_reranker: FusionReranker | None = None, info: dict[str, Any] | None = None):
        if protein_encoder.config.embed_dim != text_encoder.config.embed_dim:
            raise InputError("protein and text towers must share embed_dim")
        self.protein_encoder = protein_encoder
        self.text_encoder = text_encoder
        self.reranker = reranker
        self.homology_reranker = homology_reranker
        self.info = info or {}

    def parts(self) -> dict[str, Any]:
        """The parts present, by folder name."""
        names = [*PARTS, *(n for n in OPTIONAL_PARTS if getattr(self, n) is not None)]
        return {name: getattr(self, name) for name in names}

    def part_fingerprints(self) -> dict[str, str]:
        return {name: part.fingerprint() for name, part in self.parts().items()}

    def fingerprint(self) -> str:
        """Hash of the parts' fingerprints: changes when any weight or config changes."""
        return hashlib.sha256(json.dumps(self.part_fingerprints(), sort_keys=True).encode()).hexdigest()[:16]

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write the model folder all or nothing (:func:`index.atomic.atomic_folder`)."""
        with atomic_folder(folder, MANIFEST) as tmp:
            for name, part in self.parts().items():
                part.save_pretrained(tmp / name)
            manifest = {"parts": {name: name + "/" for name in self.parts()}, "fingerprint": self.fingerprint(),
                        "part_fingerprints": self.part_fingerprints(), "versions": versions(), "info": self.info}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return Path(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None) -> "RetrievalModel":
        """Load a model folder; ``None`` loads the default model shipped with the package."""
        folder = Path(folder) if folder is not None else DEFAULT_MODEL
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            hint = " (the default model is not installed)" if folder == DEFAULT_MODEL else ""
            raise InputError(f"{folder}: not a prot-retrieve model folder, no {MANIFEST}{hint}")
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError as err:
            raise InputError(f"{manifest_path}: unreadable ({err})") from None
        kinds = {**PARTS, **OPTIONAL_PARTS}
        unknown = set(manifest.get("parts", {})) - set(kinds)
        if unknown or not set(PARTS) <= set(manifest.get("parts", {})):
            raise InputError(f"{manifest_path}: parts {sorted(manifest.get('parts', {}))} do not make a model")
        parts = {name: kinds[name].from_pretrained(folder / path) for name, path in manifest["parts"].items()}
        model = cls(**parts, info=manifest.get("info", {}))
        if manifest.get("fingerprint") != model.fingerprint():
            raise InputError(f"{folder}: weights do not match the fingerprint in {MANIFEST} (files changed?)")
        return model
