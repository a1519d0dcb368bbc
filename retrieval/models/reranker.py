"""The fusion re-ranker: an MLP over [u, v, |u - v|, u * v] plus per-pair features -> one logit.

Its sigmoid is the probability reported to users (trained with BCE on the recall stage's own
candidates, so it is calibrated on the distribution it sees at serving time). The first layer is
written as a sum of per-part linear maps, which equals one linear map on the concatenation but
lets the protein part be computed once per protein instead of once per candidate.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from retrieval.models.pretrained import load_head, read_folder, tensor_fingerprint, write_folder


@dataclass
class RerankerConfig:
    """Constructor arguments of :class:`FusionReranker` (saved as its config.json)."""

    embed_dim: int = 256  # size of u and v
    hidden_dim: int = 128  # MLP width
    use_product: bool = True  # add u * v to [u, v, |u - v|]
    pair_features: tuple[str, ...] | list[str] = ("similarity", "term_bias")  # named scalar features (retrieval.models.scoring)
    dropout: float = 0.1


class FusionReranker(nn.Module):
    """Scores (protein, function) candidate pairs."""

    def __init__(self, config: RerankerConfig):
        super().__init__()
        self.config = config
        d, h = config.embed_dim, config.hidden_dim
        self.w_u = nn.Linear(d, h)
        self.w_v = nn.Linear(d, h, bias=False)
        self.w_diff = nn.Linear(d, h, bias=False)
        self.w_prod = nn.Linear(d, h, bias=False) if config.use_product else None
        self.w_feat = nn.Linear(len(config.pair_features), h, bias=False)
        self.feature_norm = nn.BatchNorm1d(len(config.pair_features), affine=False)
        self.head = nn.Sequential(nn.GELU(), nn.Dropout(config.dropout), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1))

    def forward(self, u: torch.Tensor, v: torch.Tensor, features: torch.Tensor,
                dtype: torch.dtype | None = None) -> torch.Tensor:
        """u (B, D), v (B, K, D), features (B, K, F) -> logits (B, K).

        ``dtype`` (bf16, fp16): the two products with the candidates, v and |u - v|, computed in it
        and summed in fp32; they are two-thirds of the work, and bf16 runs them 2-3 times faster on
        a CPU with AVX-512 BF16. Everything else stays fp32: under full autocast probabilities moved
        by up to 0.03, this way by 0.001 (docs/experiments.md, stop 23).
        """
        b, k, f = features.shape
        feats = self.feature_norm(features.reshape(b * k, f)).reshape(b, k, f)
        low = dtype or v.dtype
        if self.w_prod is None:
            weight = self.w_v.weight.transpose(0, 1)
        else:  # W_v v + W_prod (u * v) = (W_v + W_prod diag(u)) v: one product with the candidates, not two
            weight = (self.w_v.weight + self.w_prod.weight * u.unsqueeze(1)).transpose(1, 2)
        x = torch.matmul(v.to(low), weight.to(low)).float()
        # In place: the (B, K, hidden) temporaries cost as much as the products (autograd allows it here)
        x += self.w_u(u).unsqueeze(1)
        x += nn.functional.linear((u.unsqueeze(1) - v).abs_().to(low), self.w_diff.weight.to(low))
        x += self.w_feat(feats)
        return self.head(x).squeeze(-1)

    def fingerprint(self) -> str:
        return tensor_fingerprint(self.config, self.state_dict())

    def save_pretrained(self, folder: str | Path) -> Path:
        return write_folder(folder, self.config, self.state_dict(), self.fingerprint())

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "FusionReranker":
        config, tensors, _ = read_folder(folder, RerankerConfig)
        config.pair_features = tuple(config.pair_features)
        model = cls(config)
        load_head(model, tensors, folder, external=None)
        return model.eval()
