"""The function tower: a text encoder over "name: description" + projection, plus per-term memory.

Each function's vector is ``normalize(MLP(standardise(pool(backbone(text)))) + id_embedding[term])``
and it carries a bias (a learned prior logit). Terms seen in training have their own id embedding
and bias; unseen or free-text functions use the text alone and a shared default bias, so the same
tower scores GO terms it never saw and functions that are not GO at all.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from index.errors import InputError
from retrieval.models.batching import autocast, token_batches
from retrieval.models.hf_backbone import DEFAULT_TEXT_BACKBONE, folder_stamp, load_adapter, load_backbone, local_backbone_folder
from retrieval.models.pretrained import load_head, module_digest, read_folder, tensor_fingerprint, write_folder
from retrieval.models.precision import resolve_precision

TERMS_FILE = "terms.txt"
ADAPTER_DIR = "adapter"
DIGESTS = "backbone-digests"  # under cache_dir(): folder stamp -> weight digest of a backbone


def _digest_path(folder: Path) -> Path:
    from retrieval.feature_cache import cache_dir

    return cache_dir() / DIGESTS / folder_stamp(folder)


def _cached_digest(path: Path) -> str | None:
    """The weight digest stored at ``path`` (:func:`_digest_path`): these very files were hashed before."""
    return path.read_text().strip() if path.is_file() else None


def _store_digest(path: Path, digest: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(digest + "\n")
    os.replace(partial, path)  # atomic: a reader sees the whole digest or none


@dataclass
class TextEncoderConfig:
    """Constructor arguments of :class:`TextEncoder` (saved as its config.json)."""

    backbone: str = DEFAULT_TEXT_BACKBONE  # HF folder / hub id (BioBERT, ...); package:NAME for a packaged one
    embed_dim: int = 256  # size of the shared embedding space
    hidden_dim: int = 512  # projection MLP width
    max_tokens: int = 64  # text tokens per function (name + start of the definition)
    n_known_terms: int = 0  # rows of the per-term id embedding / bias tables
    quantization: str = "none"  # none | 8bit | 4bit (bitsandbytes)
    adapter: bool = False  # a LoRA adapter (peft format) is stored in the adapter/ subfolder
    dropout: float = 0.1
    graph_context: bool = False  # GO terms' texts also carry their parents' names (index.catalogue)


class TextEncoder(nn.Module):
    """Embeds function texts into L2-normalised vectors; see the module docstring."""

    def __init__(self, config: TextEncoderConfig, known_terms: list[str] | None = None,
                 backbone: nn.Module | None = None, tokenizer=None, lazy: bool = False,
                 recorded_digest: str | None = None):
        super().__init__()
        self.config = config
        # lazy: a frozen backbone in a local folder whose weights' digest is known is loaded only
        # when a text is embedded, and checked against that digest then. Annotating with a prebuilt
        # index embeds none, and loading transformers and MiniLM was about 5 s of every annotate's
        # start. The digest is the one hashed from these files before (cached by their stamp), else
        # ``recorded_digest``, the one the tower was saved with: a first run then loads no backbone.
        folder = local_backbone_folder(config.backbone) if lazy and backbone is None and not config.adapter \
            and config.quantization == "none" else None
        digest_path = _digest_path(folder) if folder is not None else None
        digest = (_cached_digest(digest_path) or recorded_digest) if digest_path is not None else None
        self._lazy_backbone = digest is not None
        if self._lazy_backbone:
            self._backbone_digest = digest
            hidden = json.loads((folder / "config.json").read_text())["hidden_size"]
        else:
            if backbone is None:
                backbone, tokenizer = load_backbone(config.backbone, config.quantization)
            self.backbone, self.tokenizer = backbone, tokenizer
            # The backbone is loaded by name; its weights, hashed once here (it is frozen; an adapter
            # is hashed apart), make the fingerprint tell two backbones of the same name apart.
            self._backbone_digest = module_digest(backbone)
            if digest_path is not None:
                _store_digest(digest_path, self._backbone_digest)
            hidden = backbone.config.hidden_size
        self.register_buffer("feature_mean", torch.zeros(hidden))
        self.register_buffer("feature_std", torch.ones(hidden))
        self.projection = nn.Sequential(nn.Linear(hidden, config.hidden_dim), nn.GELU(), nn.Dropout(config.dropout),
                                        nn.Linear(config.hidden_dim, config.embed_dim))
        self.id_embedding = nn.Embedding(max(config.n_known_terms, 1), config.embed_dim)
        nn.init.zeros_(self.id_embedding.weight)  # start from the text alone
        self.term_bias = nn.Embedding(max(config.n_known_terms, 1), 1)
        nn.init.zeros_(self.term_bias.weight)
        self.default_bias = nn.Parameter(torch.tensor(-6.0))  # unseen functions: a rare-term prior
        self.logit_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))
        self.known_terms = list(known_terms or [])
        if len(self.known_terms) != config.n_known_terms:
            raise InputError(f"text encoder: {len(self.known_terms)} known terms but n_known_terms="
                             f"{config.n_known_terms}")
        self._row = {t: i for i, t in enumerate(self.known_terms)}
        self.freeze_backbone = not config.adapter

    def __getattr__(self, name: str):
        if name in ("backbone", "tokenizer") and self.__dict__.get("_lazy_backbone"):
            self._load_backbone()
            return getattr(self, name)
        return super().__getattr__(name)

    def _load_backbone(self) -> None:
        """Load the lazy backbone, on the tower's device and in its mode; its weights must hash to
        the digest the fingerprint was made with."""
        backbone, tokenizer = load_backbone(self.config.backbone, self.config.quantization)
        if module_digest(backbone) != self._backbone_digest:
            raise InputError(f"backbone {self.config.backbone}: its weights are not those this tower's "
                             "fingerprint was made with (changed since it was loaded, or not the backbone it was "
                             "saved with)")
        self._lazy_backbone = False
        self.backbone, self.tokenizer = backbone.to(self.feature_mean.device).train(self.training), tokenizer

    @property
    def scale(self) -> float:
        """The learned logit scale: recall score = scale * u . v + bias."""
        return float(self.logit_scale.detach().exp())

    def rows(self, term_ids: list[str]) -> torch.Tensor:
        """Row of each term in the id tables, -1 for terms not seen in training."""
        return torch.tensor([self._row.get(t, -1) for t in term_ids], dtype=torch.long)

    def function_texts(self, catalogue, ontology=None) -> list[str]:
        """The texts this tower reads for a catalogue: with ``graph_context``, GO terms carry their
        parents' names (when an ontology is given; free-text functions never do)."""
        return catalogue.texts(ontology if self.config.graph_context else None)

    def backbone_features(self, texts: list[str], max_tokens_per_batch: int = 8192, precision: str = "auto",
                          progress: bool = False, cache_dir: str | Path | None = None) -> torch.Tensor:
        """Mask-aware mean-pooled backbone output per text, float32 (N, hidden), in input order.

        With ``cache_dir`` and a frozen backbone, features are read from / added to a
        :class:`retrieval.feature_cache.FeatureCache`.
        """
        device = self.feature_mean.device  # the backbone's, without loading a lazy one
        precision = resolve_precision(precision, device).name
        if cache_dir is not None and self.freeze_backbone:
            from retrieval.feature_cache import FeatureCache

            cache = FeatureCache(cache_dir, f"{self.config.backbone}|{self.config.max_tokens}|{precision}")
            return torch.from_numpy(cache.get_or_compute(
                texts, lambda todo: self.backbone_features(todo, max_tokens_per_batch, precision, progress).numpy()))
        lengths = [min(len(t) // 4 + 2, self.config.max_tokens) for t in texts]  # cheap token estimate
        out = torch.zeros(len(texts), self.backbone.config.hidden_size)
        grad = torch.enable_grad() if (self.training and not self.freeze_backbone) else torch.inference_mode()
        batches = token_batches(lengths, max_tokens_per_batch)
        with grad:
            for idx in tqdm(batches, desc="embedding functions", unit="batch", disable=not progress):
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.config.max_tokens, return_tensors="pt").to(device)
                with autocast(device, precision):
                    hidden = self.backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                out[torch.as_tensor(idx)] = ((hidden * mask).sum(1) / mask.sum(1)).float().cpu()
        return out

    def set_standardisation(self, features: torch.Tensor) -> None:
        """Centre and scale backbone features per dimension (raw MiniLM vectors sit in a narrow cone)."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp(min=1e-4))

    def forward(self, features: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features + id-table rows -> (unit vectors (N, D), biases (N,))."""
        x = self.projection((features - self.feature_mean) / self.feature_std)
        known = rows >= 0
        safe = rows.clamp(min=0)
        x = x + self.id_embedding(safe) * known.unsqueeze(-1)
        bias = torch.where(known, self.term_bias(safe).squeeze(-1), self.default_bias)
        return nn.functional.normalize(x, dim=-1), bias

    @torch.inference_mode()
    def encode(self, texts: list[str], term_ids: list[str] | None = None, precision: str = "auto",
               progress: bool = False, cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Function texts (+ their ids, to use per-term memory) -> (vectors (N, D), biases (N,)) float32."""
        return self.encode_with_meaning(texts, term_ids, precision, progress, cache_dir)[:2]

    @torch.inference_mode()
    def encode_with_meaning(self, texts: list[str], term_ids: list[str] | None = None, precision: str = "auto",
                            progress: bool = False, cache_dir: str | Path | None = None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`encode` and the texts' :meth:`meaning` vectors (N, hidden), from one pass of the backbone."""
        self.eval()
        feats = self.backbone_features(texts, precision=precision, progress=progress, cache_dir=cache_dir)
        rows = self.rows(term_ids) if term_ids is not None else torch.full((len(texts),), -1, dtype=torch.long)
        vectors, bias = self(feats.to(self.feature_mean.device), rows.to(self.feature_mean.device))
        return vectors.float().cpu().numpy(), bias.float().cpu().numpy(), meaning_vectors(feats)

    def meaning(self, texts: list[str], precision: str = "auto", progress: bool = False,
                cache_dir: str | Path | None = None) -> np.ndarray:
        """Unit vectors (N, hidden) of what the texts say: the backbone's pooled output, unprojected.

        MiniLM was trained for sentence similarity, and its cosine finds the functions worded alike
        far better than the projection trained to meet proteins (:mod:`retrieval.stages.lending`).
        """
        self.eval()
        return meaning_vectors(self.backbone_features(texts, precision=precision, progress=progress,
                                                      cache_dir=cache_dir))

    # --- save / load -------------------------------------------------------------------------
    def _saved_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def fingerprint(self) -> str:
        extra = self.config.backbone + self._backbone_digest + "\n".join(self.known_terms)
        if self.config.adapter:
            from peft import get_peft_model_state_dict

            extra += tensor_fingerprint(self.config, get_peft_model_state_dict(self.backbone))
        return tensor_fingerprint(self.config, self._saved_tensors(), extra)

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / TERMS_FILE).write_text("".join(f"{t}\n" for t in self.known_terms))
        if self.config.adapter:
            self.backbone.save_pretrained(str(folder / ADAPTER_DIR))
        return write_folder(folder, self.config, self._saved_tensors(), self.fingerprint(),
                            backbone_digest=self._backbone_digest)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "TextEncoder":
        config, tensors, meta = read_folder(folder, TextEncoderConfig)
        terms_path = Path(folder) / TERMS_FILE
        known = terms_path.read_text().split() if terms_path.exists() else []
        model = cls(config, known_terms=known, lazy=True, recorded_digest=meta.get("backbone_digest"))
        if config.adapter:
            model.backbone = load_adapter(model.backbone, Path(folder) / ADAPTER_DIR)
        load_head(model, tensors, folder)
        return model.eval()


def meaning_vectors(features: torch.Tensor) -> np.ndarray:
    """Backbone features -> unit float32 rows (see :meth:`TextEncoder.meaning`)."""
    return nn.functional.normalize(features.float(), dim=-1).numpy()
