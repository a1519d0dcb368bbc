"""The save_pretrained / from_pretrained habit: a folder with config.json + model.safetensors.

``config.json`` holds exactly the constructor's config dataclass (plus a versions block and the
fingerprint); loading is ``cls(Config(**json))`` then the weights. The fingerprint is a hash of
the canonical config and the saved tensors, so an index can refuse vectors from another model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from index.errors import InputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

C = TypeVar("C")


def versions() -> dict[str, str]:
    """Package versions recorded with every artefact."""
    import faiss
    import numpy
    import transformers

    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("prot-retrieve")
    except PackageNotFoundError:
        ours = "unknown"
    return {"prot_retrieve": ours, "torch": torch.__version__, "transformers": transformers.__version__,
            "faiss": faiss.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a flat config dataclass from its JSON dict; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise InputError(f"{cls.__name__}: unknown config key(s) {sorted(unknown)} (model made by a newer version?)")
    return cls(**data)


def tensor_fingerprint(config: Any, tensors: dict[str, torch.Tensor], extra: str = "") -> str:
    """sha256 (16 hex digits) of the canonical config JSON, the tensors (sorted by name) and ``extra``."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    digest.update(extra.encode())
    return digest.hexdigest()[:16]


def module_digest(module: torch.nn.Module) -> str:
    """sha256 (16 hex digits) of a module's weights: what a frozen backbone contributes to a
    fingerprint, so that other weights under the same name are told apart."""
    return tensor_fingerprint(_Nothing(), module.state_dict())


@dataclasses.dataclass
class _Nothing:
    """An empty config, for hashing tensors alone."""


def write_folder(folder: str | Path, config: Any, tensors: dict[str, torch.Tensor], fingerprint: str,
                 **extra: Any) -> Path:
    """Write ``config.json`` (config + fingerprint + versions + extra keys) and ``model.safetensors``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(folder / WEIGHTS_NAME))
    meta = {"config": dataclasses.asdict(config), "fingerprint": fingerprint, "versions": versions(), **extra}
    (folder / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return folder


def read_folder(folder: str | Path, config_cls: type[C]) -> tuple[C, dict[str, torch.Tensor], dict[str, Any]]:
    """Read a folder written by :func:`write_folder`.

    Returns:
        (config, tensors, the whole config.json dict).

    Raises:
        InputError: missing or unreadable files, with the folder named.
    """
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise InputError(f"{folder}: not a prot-retrieve model folder (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        meta = json.loads(config_path.read_text())
        tensors = load_file(str(weights_path))
    except Exception as err:  # noqa: BLE001 - json, OS and safetensors' own errors alike: the files are bad
        raise InputError(f"{folder}: unreadable model files ({str(err).splitlines()[0][:160]})") from None
    if "config" not in meta:
        raise InputError(f"{config_path}: no 'config' entry")
    return config_from_dict(config_cls, meta["config"]), tensors, meta


def load_head(module: torch.nn.Module, tensors: dict[str, torch.Tensor], folder: str | Path,
              external: str | None = "backbone.") -> None:
    """Load saved tensors into a module; parameters under the ``external`` prefix come from elsewhere.

    Raises:
        InputError: any other parameter is missing or unexpected, or a shape does not match.
    """
    try:
        result = module.load_state_dict(tensors, strict=False)
    except RuntimeError as err:
        raise InputError(f"{folder}: weights do not match the config ({str(err).splitlines()[-1].strip()})") from None
    missing = [k for k in result.missing_keys if external is None or not k.startswith(external)]
    if missing or result.unexpected_keys:
        raise InputError(f"{folder}: weights do not match the config (missing {missing[:3]}, "
                         f"unexpected {result.unexpected_keys[:3]})")
