"""One readable training run: towers (BCE + InfoNCE on sampled candidates), then the re-ranker.

Stages, top to bottom:
  1. load data, split proteins (train / rerank / val), pick the catalogue terms;
  2. build the towers (with a teacher, first distil it into the protein tower: :mod:`train.distill`);
     cache the frozen text backbone's features of every catalogue term;
  3. train the towers epoch by epoch, validating Fmax on held-out proteins, checkpointing;
  4. train the fusion re-ranker on the towers' own top-k candidates for the "rerank" proteins;
  5. export the model folder (save_pretrained) with the training record.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from index.errors import InputError
from retrieval.models.batching import autocast, pick_device
from retrieval.feature_cache import cache_dir
from retrieval.models.retriever import RetrievalModel
from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig
from retrieval.models.reranker import FusionReranker, RerankerConfig
from retrieval.models.text_encoder import TextEncoder, TextEncoderConfig
from train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from train.config import TrainConfig
from train.data import TrainingData, load_training_data, protein_batches, random_crop
from train.distill import distill
from train.lora import attach_lora, freeze
from train.losses import masked_bce, multi_positive_infonce
from train.rerank import HomologyTraining, train_reranker
from train.sampling import CandidateSampler
from train.schedule import warmup_cosine
from train.validation import Validator

LOG = logging.getLogger(__name__)


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def build_towers(config: TrainConfig, data: TrainingData) -> tuple[ProteinEncoder, TextEncoder]:
    """Fresh towers; LoRA on Hugging Face backbones when lora_rank > 0, else frozen backbones."""
    protein = ProteinEncoder(ProteinEncoderConfig(backbone=config.protein_backbone, embed_dim=config.embed_dim,
                                                  quantization=config.quantization))
    text = TextEncoder(TextEncoderConfig(backbone=config.text_backbone, embed_dim=config.embed_dim,
                                         n_known_terms=len(data.terms), quantization=config.quantization,
                                         graph_context=config.graph_context), known_terms=data.term_ids)
    freeze(text.backbone)
    if not protein.is_compact:
        freeze(protein.backbone)
    if config.lora_rank > 0:
        text.backbone = attach_lora(text.backbone, config.lora_rank, config.lora_alpha, config.lora_targets)
        text.config.adapter, text.freeze_backbone = True, False
        if not protein.is_compact:
            protein.backbone = attach_lora(protein.backbone, config.lora_rank, config.lora_alpha, config.lora_targets)
            protein.config.adapter = True
    if config.gradient_checkpointing:
        for backbone in (protein.backbone, text.backbone):
            if hasattr(backbone, "gradient_checkpointing_enable"):
                backbone.gradient_checkpointing_enable()
            else:
                backbone.gradient_checkpointing = True
    with torch.no_grad():
        freq = np.clip(data.frequency, 1e-4, 1 - 1e-4)
        # Start from the naive prior: the towers only learn the protein-specific part.
        text.term_bias.weight.copy_(torch.from_numpy(np.log(freq / (1 - freq))).float().unsqueeze(1))
    return protein, text


def text_features(text: TextEncoder, texts: list[str], precision: str) -> torch.Tensor:
    """Frozen text-backbone features of the catalogue, through the shared feature cache."""
    return text.backbone_features(texts, precision=precision, progress=True, cache_dir=cache_dir() / "features")


def train(config: TrainConfig) -> Path:
    """Run a whole training; returns the exported model folder (``output/model``)."""
    config.check()
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "train_config.json")
    if config.threads:
        torch.set_num_threads(config.threads)
    rng = seed_everything(config.seed)
    started = time.time()
    data = load_training_data(config)
    device = pick_device(config.device)
    protein, text = build_towers(config, data)
    protein.to(device)
    text.to(device)
    if config.distill_teacher and not (config.resume and (out / CHECKPOINT).is_file()):
        _distil(config, data, protein, device, out)
    texts = text.function_texts(data.catalogue, data.ontology)
    features = text_features(text, texts, config.precision).to(device) if text.freeze_backbone else None
    text.set_standardisation(features if features is not None else text.backbone_features(texts).to(device))
    sampler = CandidateSampler(data.y, data.leaves, data.terms, data.propagator.ancestors, *data.ontology.edges,
                               config.random_negatives, config.sibling_negatives)
    params = [p for m in (protein, text) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    lengths = np.array([len(r.sequence) for r in data.records])
    steps_per_epoch = math.ceil(len(data.splits["train"]) / config.batch_size)
    total = steps_per_epoch * config.epochs if not config.max_steps else min(config.max_steps, steps_per_epoch * config.epochs)
    scheduler = warmup_cosine(optimizer, total)
    modules = {"protein": protein, "text": text}
    first_epoch = load_checkpoint(out, modules, optimizer, scheduler, rng) if config.resume else 0
    validator = Validator(data, data.splits["val"])
    history, step = _previous_history(out, first_epoch), first_epoch * steps_per_epoch
    for epoch in range(first_epoch, config.epochs):
        protein.train()
        text.train()
        batches = protein_batches(lengths, data.splits["train"], config.batch_size, rng)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step")
        for batch in bar:
            loss = _tower_step(protein, text, data, sampler, features, texts, batch, config, rng, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optimizer.step()
            scheduler.step()
            step += 1
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if config.max_steps and step >= config.max_steps:
                break
        record = {"epoch": epoch + 1, "step": step, "loss": float(loss.item()), "minutes": (time.time() - started) / 60}
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            record["val_fmax_towers"] = validator.tower_fmax(protein, text, features, texts, config.precision)
        history.append(record)
        LOG.info("epoch %d: %s", epoch + 1, record)
        with open(out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        save_checkpoint(out, modules, optimizer, scheduler, epoch, rng)
        if config.max_steps and step >= config.max_steps:
            break
    reranker = FusionReranker(RerankerConfig(embed_dim=config.embed_dim, use_product=config.reranker_product))
    rerank_record = train_reranker(reranker, protein, text, data, features, texts, config, rng, validator)
    model = RetrievalModel(protein.cpu(), text.cpu(), reranker.cpu(), info={
        "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
        "n_proteins": {k: int(len(v)) for k, v in data.splits.items()}, "n_known_terms": int(len(data.terms)),
        "ontology_release": data.ontology.release, "history": history, "reranker": rerank_record,
        **({"distillation": json.loads((out / DISTILLATION).read_text())} if config.distill_teacher else {}),
        "minutes": round((time.time() - started) / 60, 1)})
    return model.save_pretrained(out / "model")


def retrain_reranker(model_dir: str, reference_dirs: list[str], output: str, executable: str | None = None,
                     epochs: int | None = None, shown: HomologyTraining = HomologyTraining(),
                     settings=None, data_dir: str | None = None, extend_search=None) -> Path:
    """Stage 4 again on a trained model: a second re-ranker that also reads homology transfer features,
    one block of features per reference (in the given order, which serving must repeat).

    The proteins, splits and catalogue are rebuilt from the model's recorded training config, so the
    re-ranker is trained on the same held-out proteins; the towers and the plain re-ranker are kept,
    and the new one is saved as the model's ``homology_reranker``. ``settings`` (a
    :class:`~retrieval.homology.SearchSettings`) and ``executable`` choose the search tool;
    ``data_dir``: where the recorded training files are, when not where they were
    (:meth:`TrainConfig.recorded`). ``extend_search``: a function of the search that returns the search
    the re-ranker is trained with (an experiment's extra source of evidence, e.g. teacher neighbours).
    """
    import dataclasses

    from retrieval.homology import HomologySearch, Reference, homology_feature_names
    from retrieval.models.scoring import PAIR_FEATURES

    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o {output}: exists and is not a folder")
    if epochs is not None and epochs < 1:
        raise InputError(f"--epochs must be at least 1 (got {epochs})")
    model = RetrievalModel.from_pretrained(model_dir)
    config = TrainConfig.recorded(model.info, data_dir)
    if epochs:
        config = dataclasses.replace(config, reranker_epochs=epochs)
    references = [Reference.load(folder) for folder in reference_dirs]
    rng = seed_everything(config.seed)
    out.mkdir(parents=True, exist_ok=True)
    data = load_training_data(config)
    text, protein = model.text_encoder, model.protein_encoder
    texts = text.function_texts(data.catalogue, data.ontology)
    features = text_features(text, texts, config.precision)
    homology = HomologySearch(references, settings, executable, protein)
    if extend_search is not None:
        homology = extend_search(homology)
        references = homology.references
    names = PAIR_FEATURES + tuple(n for i in range(len(references)) for n in homology_feature_names(i))
    reranker = FusionReranker(RerankerConfig(embed_dim=config.embed_dim, use_product=config.reranker_product,
                                             pair_features=names))
    record = train_reranker(reranker, protein, text, data, features, texts, config, rng,
                            Validator(data, data.splits["val"]), homology, shown)
    info = {**model.info, "homology_reranker": record, "towers_from": str(model_dir),
            "homology_references": [{"folder": str(r.folder), "fingerprint": r.fingerprint(),
                                     "n_proteins": len(r.ids), "n_terms": len(r.terms)} for r in references]}
    return RetrievalModel(protein, text, model.reranker, reranker, info=info).save_pretrained(out / "model")


DISTILLATION = "distillation.json"


def _distil(config: TrainConfig, data: TrainingData, protein, device, out: Path) -> None:
    """Stage 0: distil the teacher into the protein tower (see :mod:`train.distill`); the record is
    kept in the run folder, so a resumed run still exports it. It draws from its own random streams,
    so the GO training after it draws what a run without a teacher draws: the two differ only in
    the tower's starting weights."""
    from retrieval.io.fasta import read_fasta
    from train.teacher import TeacherVectors

    sequences = [r.sequence for r in read_fasta(config.distill_fasta)] if config.distill_fasta else \
        [data.records[i].sequence for i in data.splits["train"]]
    torch_state = torch.get_rng_state()
    record = distill(protein, sequences, TeacherVectors.existing(config.distill_teacher), config.distill_epochs,
                     config.batch_size, config.lr, np.random.default_rng(config.seed + 1), device, config.precision)
    torch.set_rng_state(torch_state)
    (out / DISTILLATION).write_text(json.dumps(record, indent=2) + "\n")


def _previous_history(out: Path, first_epoch: int) -> list[dict]:
    """Metrics of the epochs a resumed run already did (so the exported record covers the whole run)."""
    path = out / "metrics.jsonl"
    if first_epoch == 0 or not path.is_file():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["epoch"] <= first_epoch]


def _tower_step(protein, text, data, sampler, features, texts, batch, config, rng, device) -> torch.Tensor:
    """Loss of one batch: score the proteins against the batch's candidate terms."""
    if protein.is_unirep:  # frozen: whole sequences, whose features are cached (a crop would be new)
        inputs = protein.pooled_features([data.records[i].sequence for i in batch]).to(device)
    else:
        seqs = [random_crop(data.records[i].sequence, config.crop, rng) for i in batch]
        inputs = {k: v.to(device) for k, v in protein.tokenize(seqs).items()}
    columns, targets, mask = sampler.sample(batch, rng)
    rows = columns.clone()  # the id rows the text tower reads: -1 scores a term by its text alone
    if config.id_dropout:
        rows[torch.from_numpy(rng.random(len(rows)) < config.id_dropout)] = -1
    with autocast(device, config.precision):
        u = protein.project(inputs) if protein.is_unirep else protein(inputs)
        feats = features[columns.to(device)] if features is not None else \
            text.backbone_features([texts[c] for c in columns.tolist()]).to(device)
        v, bias = text(feats, rows.to(device))
        logits = text.logit_scale.exp() * u.float() @ v.float().T + bias.float()
    targets, mask = targets.to(device), mask.to(device)
    return masked_bce(logits, targets, mask) + config.infonce_weight * multi_positive_infonce(logits, targets, mask)
