"""The protein tower: a backbone (our compact CNN, any Hugging Face encoder, or frozen UniRep) +
pooling + projection.

Long sequences: a sequence longer than ``max_residues`` is cut into windows of ``max_residues``
overlapping by ``window_overlap``; the pooled window features are averaged, weighted by window
length, before the projection. Nothing is truncated and memory stays bounded (35,000 residues work).

UniRep (``unirep-64``, ``unirep-256``, ``unirep-1900``; :mod:`retrieval.models.unirep`) is always
frozen and slow (a recurrence per residue), so its window features are kept in the shared feature
cache (:func:`retrieval.feature_cache.cache_dir`): a window is run through it once per machine,
and training on it costs a lookup. It computes in fp32 whatever the precision: its cached features
are the package's numbers.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from retrieval.models.alphabet import PAD_ID, encode
from retrieval.models.backbone_names import COMPACT, UNIREP, unirep_size
from retrieval.models.batching import autocast, token_batches
from retrieval.models.compact_protein import CompactCNN
from retrieval.models.hf_backbone import load_adapter, load_backbone
from retrieval.models.precision import resolve_precision
from retrieval.models.pretrained import load_head, module_digest, read_folder, tensor_fingerprint, write_folder
from retrieval.models.unirep import UniRep

LOG = logging.getLogger(__name__)
ADAPTER_DIR = "adapter"
#: Batches are padded to a multiple of this many residues: a few distinct shapes instead of one per
#: batch, so oneDNN's cache of compiled kernels (one per input shape) stops growing over a long run.
PAD_MULTIPLE = 64
# oneDNN keeps up to 1,024 compiled kernels (one per input shape), and over a long run their memory
# was most of the growth of the peak (docs/benchmarks.md); read when the first kernel is made.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8")
#: Revision of the inference arithmetic, in every embedding-cache key: vectors cached by code that
#: computed them differently (2: the compact CNN keeps bf16 activations under bf16) are not reused.
ARITHMETIC = 2


@dataclass
class ProteinEncoderConfig:
    """Constructor arguments of :class:`ProteinEncoder` (saved as its config.json)."""

    backbone: str = COMPACT  # "compact", "unirep-256" (64, 1900) or a Hugging Face folder / hub id (ProtBERT, ESM-2)
    embed_dim: int = 256  # size of the shared embedding space
    max_residues: int = 1000  # window length; longer sequences are split into windows
    window_overlap: int = 250  # residues shared by consecutive windows
    residue_format: str = "auto"  # "spaced" (ProtBERT: 'M K V'), "plain" (ESM-2: 'MKV') or auto-detect
    quantization: str = "none"  # Hugging Face backbones: none | 8bit | 4bit (bitsandbytes)
    cnn_token_dim: int = 64  # compact backbone: residue embedding size
    cnn_channels: int = 256  # compact backbone: channels
    cnn_blocks: int = 3  # compact backbone: residual blocks
    dropout: float = 0.1
    adapter: bool = False  # a LoRA adapter (peft format) is stored in the adapter/ subfolder


class ProteinEncoder(nn.Module):
    """Embeds protein sequences into L2-normalised vectors of size ``config.embed_dim``."""

    def __init__(self, config: ProteinEncoderConfig, backbone: nn.Module | None = None, tokenizer=None):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        if config.backbone == COMPACT:
            self.backbone = backbone or CompactCNN(config.cnn_token_dim, config.cnn_channels, config.cnn_blocks,
                                                   config.dropout)
            feature_dim = self.backbone.out_dim
        elif self.is_unirep:
            self.backbone = backbone or UniRep.from_package(unirep_size(config.backbone[len(UNIREP):]))
            self._backbone_digest = module_digest(self.backbone)
            feature_dim = self.backbone.size
        else:
            if backbone is None:
                backbone, self.tokenizer = load_backbone(config.backbone, config.quantization)
            self.backbone = backbone
            self._backbone_digest = module_digest(backbone)  # loaded by name: its weights tell it apart
            feature_dim = backbone.config.hidden_size
        self.projection = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(feature_dim, config.embed_dim))
        self._windows = None  # UniRep's window features in the feature cache, opened when first needed
        self._int8 = None  # (fingerprint, the compact backbone's int8 copy), made when first needed
        self._spaced = self._detect_spacing()

    @property
    def is_compact(self) -> bool:
        return self.config.backbone == COMPACT

    @property
    def is_unirep(self) -> bool:
        return self.config.backbone.startswith(UNIREP)

    def _detect_spacing(self) -> bool:
        """ProtBERT-style vocabularies hold single residues and need 'M K V'; ESM-style tokenise 'MKV'."""
        if self.tokenizer is None or self.config.residue_format != "auto":
            return self.config.residue_format == "spaced"
        ids = self.tokenizer("MKV", add_special_tokens=False)["input_ids"]
        return len(ids) != 3

    def tokenize(self, sequences: list[str]) -> dict[str, torch.Tensor]:
        """Pad a batch of (already cropped) sequences into backbone inputs."""
        if self.is_compact:
            longest = -(-max(len(s) for s in sequences) // PAD_MULTIPLE) * PAD_MULTIPLE
            tokens = torch.full((len(sequences), longest), PAD_ID, dtype=torch.long)
            for row, seq in enumerate(sequences):
                tokens[row, : len(seq)] = torch.from_numpy(encode(seq))
            return {"tokens": tokens}
        if self.is_unirep:  # padded to the longest only: the recurrence pays for every position
            tokens, lengths = UniRep.batch(sequences)
            return {"tokens": tokens, "lengths": lengths}
        texts = [" ".join(s) for s in sequences] if self._spaced else sequences
        return dict(self.tokenizer(texts, padding=True, pad_to_multiple_of=PAD_MULTIPLE, return_tensors="pt"))

    def features(self, batch: dict[str, torch.Tensor], compact: nn.Module | None = None) -> torch.Tensor:
        """Pooled backbone features (before projection): mask-aware mean for transformers. ``compact``:
        a copy of the compact backbone to run instead (its int8 copy)."""
        if self.is_compact:
            return (compact or self.backbone)(batch["tokens"])
        if self.is_unirep:
            with torch.autocast(batch["tokens"].device.type, enabled=False):
                return self.backbone(batch["tokens"], batch["lengths"]).clone()  # a tensor autograd may use
        hidden = self.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.projection(features.float()), dim=-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.project(self.features(batch))

    def windows(self, sequence: str) -> list[str]:
        """The windows a sequence is embedded as (one window when it fits)."""
        size, step = self.config.max_residues, self.config.max_residues - self.config.window_overlap
        if len(sequence) <= size:
            return [sequence]
        starts = list(range(0, len(sequence) - size, step)) + [len(sequence) - size]
        return [sequence[s: s + size] for s in starts]

    def encode(self, sequences: list[str], max_tokens: int = 32768, precision: str = "auto",
               progress: bool = False, cache_dir: str | Path | None = None) -> np.ndarray:
        """Embed sequences (any length) -> float32 array (n, embed_dim), rows L2-normalised.

        Args:
            sequences: normalised residue strings.
            max_tokens: padded residues per batch (memory bound).
            precision: auto | fp32 | bf16 | fp16 | int8 (see :mod:`retrieval.models.precision`).
            progress: show a progress bar.
            cache_dir: read / add embeddings in a :class:`retrieval.feature_cache.FeatureCache` keyed
                by sequence and by this tower's fingerprint (a sequence is embedded once per model).
        """
        precision = self.resolved_precision(precision)
        if cache_dir is None:
            return self._encode(sequences, max_tokens, precision, progress)
        from retrieval.feature_cache import FeatureCache

        cache = FeatureCache(cache_dir, f"protein|{self.cache_key(precision)}")
        return cache.get_or_compute(sequences, lambda todo: self._encode(todo, max_tokens, precision, progress))

    @torch.inference_mode()
    def _encode(self, sequences: list[str], max_tokens: int, precision: str, progress: bool) -> np.ndarray:
        self.eval()
        if not sequences:
            return np.zeros((0, self.config.embed_dim), dtype=np.float32)
        features = self.pooled_features(sequences, max_tokens, precision, progress)
        return self.project(features.to(next(self.parameters()).device)).cpu().numpy()

    def pooled_features(self, sequences: list[str], max_tokens: int = 32768, precision: str = "fp32",
                        progress: bool = False) -> torch.Tensor:
        """Backbone features of whole sequences, before the projection (n, hidden) float32: each
        sequence's windows, averaged by length. A frozen UniRep's window features come from the
        feature cache, so training projects these instead of running it on every crop."""
        pieces, owners = [], []
        for i, seq in enumerate(sequences):
            for window in self.windows(seq):
                pieces.append(window)
                owners.append(i)
        if self.is_unirep:
            window_features = self.window_cache().get_or_compute(
                pieces, lambda todo: self._window_features(todo, max_tokens, precision, progress))
        else:
            window_features = self._window_features(pieces, max_tokens, precision, progress)
        lengths = np.array([len(p) for p in pieces], dtype=np.float64)
        pooled = np.zeros((len(sequences), window_features.shape[1]), dtype=np.float64)
        np.add.at(pooled, np.asarray(owners), window_features * lengths[:, None])
        pooled /= np.bincount(owners, weights=lengths, minlength=len(sequences))[:, None]
        return torch.from_numpy(pooled.astype(np.float32))

    def _window_features(self, pieces: list[str], max_tokens: int, precision: str, progress: bool) -> np.ndarray:
        """Pooled backbone features (n, hidden) of windows that fit the backbone, in input order."""
        device = next(self.parameters()).device
        out = None
        int8 = self.int8_backbone() if precision == "int8" and self.is_compact else None
        batches = token_batches([len(p) for p in pieces], max_tokens, multiple=PAD_MULTIPLE)
        with torch.inference_mode():
            for batch_idx in tqdm(batches, desc="embedding proteins", unit="batch", disable=not progress):
                inputs = {k: v.to(device) for k, v in self.tokenize([pieces[j] for j in batch_idx]).items()}
                with autocast(device, precision):
                    feats = self.features(inputs, int8).float().cpu().numpy()
                if out is None:
                    out = np.zeros((len(pieces), feats.shape[1]), dtype=np.float32)
                out[batch_idx] = feats
        return out

    def int8_backbone(self) -> nn.Module:
        """The compact backbone with int8 convolutions (:mod:`retrieval.models.int8_cnn`), made on
        first use from output ranges measured once per tower and kept in the cache."""
        fingerprint = self.fingerprint()  # a copy made before training steps would be stale
        if self._int8 is None or self._int8[0] != fingerprint:
            from retrieval.models import int8_cnn

            def measure():
                sequences = int8_cnn.calibration_sequences(max_residues=self.config.max_residues)
                batches = token_batches([len(s) for s in sequences], 32768, multiple=PAD_MULTIPLE)
                return int8_cnn.output_ranges(self.backbone, (self.tokenize([sequences[j] for j in b])["tokens"]
                                                              for b in batches))

            ranges = int8_cnn.cached_ranges(fingerprint, measure)
            self._int8 = (fingerprint, int8_cnn.quantized_copy(self.backbone, ranges))  # a tuple: not a submodule
        return self._int8[1]

    def window_cache(self):
        """The shared feature cache's file of this frozen backbone's window features (opened once)."""
        if self._windows is None:
            from retrieval.feature_cache import FeatureCache, cache_dir

            self._windows = FeatureCache(cache_dir() / "features", f"protein|{self.config.backbone}|{self._backbone_digest}")
        return self._windows

    def resolved_precision(self, precision: str) -> str:
        """What ``precision`` computes in on this tower's device (fp32 | bf16 | fp16 | int8)."""
        return resolve_precision(precision, next(self.parameters()).device).name

    def cache_key(self, precision: str) -> str:
        """What cached embeddings of this tower at ``precision`` are filed under (int8: with the
        revision of its recipe, which its vectors depend on too)."""
        resolved = self.resolved_precision(precision)
        if resolved == "int8":
            from retrieval.models.int8_cnn import RECIPE

            resolved += f"-{RECIPE}"
        return f"{self.fingerprint()}|{resolved}|{ARITHMETIC}"

    # --- save / load -------------------------------------------------------------------------
    def _saved_tensors(self) -> dict[str, torch.Tensor]:
        """Compact: everything. HF backbone: the head only (the backbone reloads from its name; LoRA
        weights go to the adapter folder)."""
        state = self.state_dict()
        if self.is_compact:
            return state
        return {k: v for k, v in state.items() if not k.startswith("backbone.")}

    def fingerprint(self) -> str:
        extra = ""
        if not self.is_compact:
            extra = self.config.backbone + self._backbone_digest
            if self.config.adapter:
                from peft import get_peft_model_state_dict

                extra += tensor_fingerprint(self.config, get_peft_model_state_dict(self.backbone))
        return tensor_fingerprint(self.config, self._saved_tensors(), extra)

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        if not self.is_compact and self.config.adapter:
            self.backbone.save_pretrained(str(folder / ADAPTER_DIR))
        return write_folder(folder, self.config, self._saved_tensors(), self.fingerprint())

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "ProteinEncoder":
        config, tensors, _ = read_folder(folder, ProteinEncoderConfig)
        model = cls(config)
        if not model.is_compact and config.adapter:
            model.backbone = load_adapter(model.backbone, Path(folder) / ADAPTER_DIR)
        load_head(model, tensors, folder, external=None if model.is_compact else "backbone.")
        return model.eval()
