"""Zero-shot by hold-out: GO terms removed from training (with their subtrees), then scored.

    python benchmarks/zero_shot_holdout.py pick [--seed 0] > benchmarks/data/held_out_terms.txt
    python benchmarks/zero_shot_holdout.py evaluate --held-out-model DIR --normal-model DIR [--hybrid ...]

``pick`` writes the term list one retrain holds out (``prot-retrieve train --hold-out-terms`` and
``build-reference --hold-out-terms``), tagged by protocol:

- ``deepgozero``, protocol (a): the 16 terms DeepGOZero held out (Kulmanov & Hoehndorf 2022);
- ``subtree``, protocol (b): per aspect, a seeded 5 % of the terms with 20-500 propagated training
  proteins (train_goa2019exp_7sp minus the CAFA3 benchmark proteins), none an ancestor or a
  descendant of another held-out term, of either protocol.

``evaluate`` scores the held-out terms with the model trained without them and, as the upper bound,
with a model trained normally (same recipe, split and seed), on two sets of proteins:

- ``val``: the training run's validation proteins (never trained on; with ``--hybrid`` each one's
  hit on itself is hidden, since the references hold these very proteins);
- ``CAFA3``: the NK + LK targets.

With ``--hybrid`` both are scored with the homology re-rankers and their references (the held-out
run's references lack the held-out terms too).

For each term, positives carry it (propagated truth) and negatives are the other proteins annotated
in its aspect. Methods, as in ``benchmarks/zero_shot.py``: the held-out model; parent (its score for
the term's parents, the minimum over them); nearest seen term (its score for the training term whose
text is most similar); random; and the upper bound. Per aspect: mean per-term AUROC and AUPR, sibling
AUROC (negatives carry every parent of the term but not the term), precision@10 (the term's text as a
query ranking the proteins: text-to-protein search), protein-centric Fmax over the held-out terms,
and ECE; also split by text similarity to the nearest training term (below or above the median).

Three leads are scored too, without retraining. Two give the unseen term another prior than the one
learned constant (its vector unchanged), one another vector:

- model, prior from parents: the lowest bias of its parents minus the median gap between a seen
  term's bias and its lowest parent's (a child is rarer than its parents);
- model, prior from text: a ridge regression from the text-only vector to the bias, fitted on the
  seen terms;
- model, vector with its parents' id memory: the term's text vector plus the mean of what training
  added to its parents' text vectors (their id embeddings' effect), renormalised: the GO graph on
  the function side, composed from the seen parents.

Beside the nearest seen term: the mean score of the 5 seen terms nearest by text (the tower's
vectors, same aspect), weighted by their similarity. With references the model itself scores a
held-out term as the mean of its two-tower score and its scores of the annotated GO terms nearest in
meaning (retrieval.stages.lending; they come from the whole GO index, as in a whole-catalogue run). With
``--hybrid``, one more lead: parent x text share, the hybrid's score of each parent times the
towers' score of the term over theirs of that parent (at most 1), lowest over the parents.

Both protocols share one retrain: a term of one is never in the subtree of a term of the other, so
each is unseen in the same sense as if it had been held out alone.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd

from cafa3 import DEFAULT_DATA, _model, cafa3_setting, with_cafa_taxa
from retrieval.evaluation import expected_calibration_error
from zero_shot import auroc, average_precision, cafa3_truth, evaluation_proteins, fmax

DEEPGOZERO = {
    "MFO": ["GO:0001227", "GO:0001228", "GO:0003735", "GO:0004867", "GO:0005096"],
    "BPO": ["GO:0000381", "GO:0032729", "GO:0032755", "GO:0032760", "GO:0046330", "GO:0051897", "GO:0120162"],
    "CCO": ["GO:0005762", "GO:0022625", "GO:0042788", "GO:1904813"],
}
SUBTREE_FRACTION, MIN_PROTEINS, MAX_PROTEINS = 0.05, 20, 500
NEIGHBOURS = 5  # seen terms nearest by text, for the similarity-weighted baseline


def pick_subtrees(ontology, propagator, labels, blocked: np.ndarray, seed: int) -> dict[str, list[str]]:
    """Per aspect, a seeded ``SUBTREE_FRACTION`` of the eligible terms, pairwise unrelated.

    ``blocked`` marks terms that may not be picked (related to terms held out already); each picked
    term blocks its ancestors and descendants in turn.
    """
    ancestors = propagator.ancestors
    related = (ancestors + ancestors.T).tocsr()  # t's row: t, its ancestors and its descendants
    counts = np.asarray(labels.sum(axis=0)).ravel()
    rng = np.random.default_rng(seed)
    blocked = blocked.copy()
    picked = {}
    for aspect in ("MFO", "BPO", "CCO"):
        namespace = {"MFO": "molecular_function", "BPO": "biological_process", "CCO": "cellular_component"}[aspect]
        eligible = np.flatnonzero((ontology.namespaces == namespace) & (counts >= MIN_PROTEINS)
                                  & (counts <= MAX_PROTEINS))
        want = round(SUBTREE_FRACTION * len(eligible))
        chosen = []
        for t in rng.permutation(eligible):
            if len(chosen) == want:
                break
            if not blocked[t]:
                chosen.append(ontology.live_ids[t])
                blocked[related.indices[related.indptr[t]:related.indptr[t + 1]]] = True
        picked[aspect] = chosen
        logging.info("%s: %d of %d eligible terms held out", aspect, len(chosen), len(eligible))
    return picked


@click.group()
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")


@main.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--seed", default=0, show_default=True)
def values_at(data: str, seed: int) -> None:
    """Print the held-out term list (GO id, then '# protocol aspect proteins')."""
    from index.holdout import subtrees

    setting = cafa3_setting(Path(data))
    onto, prop = setting.ontology, setting.propagator
    counts = np.asarray(setting.labels.sum(axis=0)).ravel()
    dgz = [t for terms in DEEPGOZERO.values() for t in terms]
    related = subtrees(onto, prop, dgz)  # their descendants,
    related[prop.closure_of(np.array([onto.index[t] for t in dgz]))] = True  # and their ancestors
    subtrees = pick_subtrees(onto, prop, setting.labels, related, seed)
    click.echo(f"# held out by benchmarks/zero_shot_holdout.py pick --seed {seed} (GO {onto.release})")
    for protocol, groups in (("deepgozero", DEEPGOZERO), ("subtree", subtrees)):
        for aspect, terms in groups.items():
            for t in terms:
                click.echo(f"{t}\t# {protocol} {aspect} {int(counts[onto.index[t]])}")


def held_out_list(path: Path) -> pd.DataFrame:
    """(term, protocol, aspect) rows of a ``pick`` file."""
    rows = []
    for line in path.read_text().splitlines():
        term, _, comment = line.partition("#")
        if term.strip():
            protocol, aspect, _ = comment.split()
            rows.append((term.strip(), protocol, aspect))
    return pd.DataFrame(rows, columns=["term", "protocol", "aspect"])


def validation_set(data: Path, seed: int):
    """The shipped recipe's validation proteins (with taxa) and their propagated truth."""
    from train.config import TrainConfig
    from train.data import load_training_data

    d = data / "train_goa2019exp_7sp"
    training = load_training_data(TrainConfig(fasta=str(d / "sequences.fasta.gz"),
                                              annotations=str(d / "annotations_leaf_exp.tsv.gz"),
                                              obo=str(data / "go" / "go-basic_2021-12-15.obo.gz"),
                                              exclude_tag=("cafa3_benchmark=1",), seed=seed))
    live = np.asarray(training.ontology.live_ids, dtype=object)
    rows = training.splits["val"]
    records = [training.records[i] for i in rows]
    return records, {r.id: set(live[training.labels[i].indices]) for r, i in zip(records, rows)}


def _variants(text, catalogue, onto, vectors, seen, held_ids, parents, row) -> dict:
    """Method name -> (vectors, biases) of the held-out terms: a prior from their parents or from their
    text, or a vector composed with their parents' id memory."""
    from index.catalogue import FunctionCatalogue
    from retrieval.feature_cache import cache_dir

    with_id = set(text.known_terms)
    known = np.array([i for i in np.flatnonzero(seen) if catalogue.ids[i] in with_id])
    seen_cat = FunctionCatalogue(catalogue.table.iloc[known])
    full, known_bias = text.encode(text.function_texts(seen_cat, onto), seen_cat.ids, cache_dir=cache_dir() / "features")
    bias_of = dict(zip(seen_cat.ids, known_bias))
    gaps = [min(bias_of[p] for p in ps) - bias_of[t] for t in seen_cat.ids
            if (ps := [p for p in (*onto.terms[t].is_a, *onto.terms[t].part_of) if p in bias_of])]
    gap = float(np.median(gaps))
    held_cat = FunctionCatalogue(catalogue.table.iloc[[row[t] for t in held_ids]])
    v, own_bias = text.encode(text.function_texts(held_cat, onto), held_ids,  # no id memory: they have none
                              cache_dir=cache_dir() / "features")
    from_parents = np.array([min((bias_of[p] for p in parents[t] if p in bias_of), default=b) - gap
                             for t, b in zip(held_ids, own_bias)], dtype=np.float32)
    x = np.hstack([vectors[known], np.ones((len(known), 1))])
    weights = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ known_bias)  # ridge, lambda = 1
    from_text = (np.hstack([vectors[[row[t] for t in held_ids]], np.ones((len(held_ids), 1))]) @ weights)
    logging.info("unseen-term prior %.2f; from parents (gap %.2f) mean %.2f; from text mean %.2f", own_bias.mean(),
                 gap, from_parents.mean(), from_text.mean())
    # The parents' id memory (what training added to their text vectors), averaged and added to the term's.
    memory = {t: f - vectors[row[t]] for t, f in zip(seen_cat.ids, full)}
    composed = np.array([v[i] + np.mean([memory[p] for p in parents[t] if p in memory] or [np.zeros(v.shape[1])], axis=0)
                         for i, t in enumerate(held_ids)], dtype=np.float32)
    composed /= np.linalg.norm(composed, axis=1, keepdims=True)
    return {"model, prior from parents": (v, from_parents), "model, prior from text": (v, from_text.astype(np.float32)),
            "model, vector with its parents' id memory": (composed, own_bias)}


def _search_precision(model, proteins, by_id, held, sub, onto, pairs, annotator=None) -> dict[str, float]:
    """Precision@10 of `prot-retrieve search`: per aspect, a protein index of its evaluation proteins,
    queried with each held-out term's "name: definition" (ProteinIndex.search, top 10); with the
    hybrid ``annotator``, the index keeps the proteins' homology profiles and searches borrow."""
    from retrieval.protein_index import ProteinIndex

    texts = dict(zip(sub.ids, model.text_encoder.function_texts(sub, onto)))
    found = {}
    for aspect, people in proteins.items():
        terms = [t for t in held.loc[held["aspect"] == aspect, "term"]
                 if sum((p, t) in pairs for p in people) >= 3]
        if not terms:
            continue
        index = ProteinIndex.build(model, [by_id[p] for p in people], progress=False, annotator=annotator)
        hits = index.search(model, [texts[t] for t in terms], top=10)
        for t in terms:
            top = hits.loc[hits["query"] == texts[t].strip(), "protein_id"]
            found[t] = float(np.mean([(p, t) in pairs for p in top]))
    return found


def _similarity_weighted(scores: pd.DataFrame, people: list[str], names: list[str], sims: np.ndarray) -> np.ndarray:
    """The mean score of the terms ``names``, weighted by their text similarity ``sims``."""
    return scores.loc[people, names].to_numpy() @ (sims / sims.sum())


def _parent_times_share(scores: dict, people: list[str], term: str, parents: list[str]) -> np.ndarray:
    """The hybrid's score of each parent (homology evidence) times the share of it the towers give
    the term (their score of the term over their score of that parent, at most 1), lowest over the
    parents: the GO graph says which proteins, the text which child."""
    towers = scores["towers"].loc[people]
    share = np.divide(towers[[term]].to_numpy(), towers[parents].to_numpy())
    return (scores["model"].loc[people, parents].to_numpy() * np.minimum(share, 1.0)).min(axis=1)


def precision_at(scores: np.ndarray, positive: np.ndarray, k: int = 10) -> float:
    return float(positive[np.argsort(-scores, kind="stable")[:k]].mean())


@main.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--terms", "terms_file", type=click.Path(exists=True, dir_okay=False),
              default=str(Path(__file__).parent / "data" / "held_out_terms.txt"), show_default=True)
@click.option("--held-out-model", required=True, help="Model trained with --hold-out-terms TERMS.")
@click.option("--normal-model", default="shipped", show_default=True, help="The same recipe trained normally.")
@click.option("--hybrid", is_flag=True, help="Score with homology (validation proteins' self-hits hidden).")
@click.option("--held-out-reference", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="References built with --hold-out-terms TERMS (for --hybrid), repeatable, in the model's order.")
@click.option("--seed", default=0, show_default=True, help="Split seed of both trainings; seed of the random baseline.")
def evaluate(data, terms_file, held_out_model, normal_model, hybrid, held_out_reference, seed) -> None:
    """Score the held-out terms; print one table per protocol."""
    from index.catalogue import FunctionCatalogue
    from index.holdout import subtrees
    from retrieval.annotate import Annotator
    from retrieval.feature_cache import cache_dir
    from train.thresholds import WithoutSelfHits

    logging.getLogger().setLevel(logging.WARNING)
    data = Path(data)
    setting = cafa3_setting(data)
    onto, prop = setting.ontology, setting.propagator
    held = held_out_list(Path(terms_file))
    if hybrid and not held_out_reference:
        raise click.UsageError("--hybrid needs the --held-out-reference folders")
    models = {"model": Annotator.from_pretrained(held_out_model, reference=list(held_out_reference) or None),
              "upper bound": Annotator.from_pretrained(_model(normal_model), reference="default" if hybrid else None)}
    if hybrid:  # the held-out model's towers alone, for the parent x text share lead
        models["towers"] = Annotator.from_pretrained(held_out_model, reference=None)
    catalogue = FunctionCatalogue.from_ontology(onto)
    ids, row = catalogue.ids, {t: i for i, t in enumerate(catalogue.ids)}
    text = models["model"].model.text_encoder
    vectors, _ = text.encode(text.function_texts(catalogue, onto), cache_dir=cache_dir() / "features")  # no id memory
    seen = (np.asarray(setting.labels.sum(0)).ravel() > 0) & ~subtrees(onto, prop, list(held["term"]))
    aspects = catalogue.table["aspect"].to_numpy()
    parents, neighbours, similarity = {}, {}, {}
    for t, aspect in zip(held["term"], held["aspect"]):
        parents[t] = [p for p in (*onto.terms[t].is_a, *onto.terms[t].part_of) if p in row]
        candidates = np.flatnonzero(seen & (aspects == aspect))
        sims = vectors[candidates] @ vectors[row[t]]
        top = np.argsort(-sims, kind="stable")[:NEIGHBOURS]
        neighbours[t] = ([ids[i] for i in candidates[top]], sims[top])
        similarity[t] = float(sims[top[0]])
    nearest = {t: names[0] for t, (names, _) in neighbours.items()}
    needed = sorted(set(held["term"]) | {p for ps in parents.values() for p in ps}
                    | {n for names, _ in neighbours.values() for n in names})
    sub = FunctionCatalogue(catalogue.table.iloc[[row[t] for t in needed]])
    variants = _variants(text, catalogue, onto, vectors, seen, list(held["term"]), parents, row)
    sets = {"CAFA3": ([r for r in with_cafa_taxa(setting.records)], cafa3_truth(setting)),
            "val": validation_set(data, seed)}
    for annotator in models.values():  # the validation proteins are in the references: not their own homologs
        if annotator.homology is not None:
            annotator.homology = WithoutSelfHits(annotator.homology)
    held_catalogue = FunctionCatalogue(catalogue.table.iloc[[row[t] for t in held["term"]]])
    held_meaning = text.meaning(text.function_texts(held_catalogue, onto), cache_dir=cache_dir() / "features")
    rng = np.random.default_rng(seed)
    rows = []
    for set_name, (records, truth) in sets.items():
        proteins = evaluation_proteins(setting, truth)
        by_id = {r.id: r for r in records}
        everyone = [by_id[p] for p in sorted({p for ps in proteins.values() for p in ps})]
        scores = {name: annotator.score(everyone, sub) for name, annotator in models.items()}
        held_ids = list(held["term"])
        for variant, (v, b) in variants.items():
            scores["model"] = scores["model"].join(models["model"].score_vectors(
                everyone, [f"{t}|{variant}" for t in held_ids], v, b, held_meaning))
        pairs = set((p, t) for p, ts in truth.items() for t in ts)
        searched = _search_precision(models["model"].model, proteins, by_id, held, sub, onto, pairs,
                                     models["model"] if hybrid else None)
        per_term, matrices = [], {}
        for t, protocol, aspect in held.itertuples(index=False):
            people = proteins[aspect]
            positive = np.array([(p, t) in pairs for p in people])
            if positive.sum() < 3:  # too few positives among these proteins for a per-term figure
                continue
            siblings = np.array([all((p, q) in pairs for q in parents[t]) for p in people]) & ~positive
            methods = {"model": scores["model"].loc[people, t].to_numpy(),
                       "parent": scores["model"].loc[people, parents[t]].min(axis=1).to_numpy(),
                       "nearest seen term": scores["model"].loc[people, nearest[t]].to_numpy(),
                       f"nearest {NEIGHBOURS} seen terms, by similarity": _similarity_weighted(
                           scores["model"], people, *neighbours[t]),
                       **{variant: scores["model"].loc[people, f"{t}|{variant}"].to_numpy() for variant in variants},
                       **({"parent x text share": _parent_times_share(scores, people, t, parents[t])} if hybrid else {}),
                       "random": rng.random(len(people)),
                       "upper bound (trained on the term)": scores["upper bound"].loc[people, t].to_numpy()}
            for method, s in methods.items():
                sib = np.concatenate([s[positive], s[siblings]])
                per_term.append({"protocol": protocol, "aspect": aspect, "method": method, "term": t,
                                 "similarity": similarity[t], "auroc": auroc(s, positive),
                                 "aupr": average_precision(s, positive), "p10": precision_at(s, positive),
                                 "search_p10": searched.get(t, float("nan")) if method == "model" else float("nan"),
                                 "sibling": auroc(sib, np.r_[np.ones(positive.sum(), bool), np.zeros(siblings.sum(), bool)])
                                 if siblings.any() else float("nan")})
                matrices.setdefault((protocol, aspect, method), []).append((s, positive))
        table = pd.DataFrame(per_term)
        for (protocol, aspect, method), group in table.groupby(["protocol", "aspect", "method"], sort=False):
            score = np.column_stack([m[0] for m in matrices[protocol, aspect, method]])
            truth_m = np.column_stack([m[1] for m in matrices[protocol, aspect, method]])
            median = group["similarity"].median()
            strata = {"all": group, f"distant (< {median:.2f})": group[group["similarity"] < median],
                      f"similar (>= {median:.2f})": group[group["similarity"] >= median]}
            for stratum, part in strata.items():
                rows.append({"set": set_name, "protocol": protocol, "aspect": aspect, "method": method,
                             "text": stratum, "terms": len(part), "auroc": part["auroc"].mean(),
                             "aupr": part["aupr"].mean(), "p10": part["p10"].mean(),
                             "search_p10": part["search_p10"].mean(), "sibling": part["sibling"].mean(),
                             "sibling_terms": int(part["sibling"].notna().sum()),
                             "fmax": fmax(score, truth_m) if stratum == "all" else float("nan"),
                             "ece": expected_calibration_error(score.ravel(), truth_m.ravel())
                             if stratum == "all" and method != "random" else float("nan")})
    out = pd.DataFrame(rows)
    click.echo(f"held-out model {models['model'].model.fingerprint()}, normal model "
               f"{models['upper bound'].model.fingerprint()} ({'hybrid' if hybrid else 'two towers'})")
    for protocol, part in out.groupby("protocol", sort=False):
        click.echo(f"\n### {protocol}\n")
        click.echo("| set | aspect | terms | method | AUROC | AUPR | sibling AUROC (terms) | precision@10 | "
                   "`search` precision@10 | Fmax | ECE |")
        click.echo("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in part[part["text"] == "all"].itertuples():
            click.echo(f"| {r.set} | {r.aspect} | {r.terms} | {r.method} | {r.auroc:.3f} | {r.aupr:.3f} | "
                       f"{r.sibling:.3f} ({r.sibling_terms}) | {r.p10:.3f} | "
                       + (f"{r.search_p10:.3f}" if r.search_p10 == r.search_p10 else "") + f" | {r.fmax:.3f} | "
                       + (f"{r.ece:.3f} |" if r.ece == r.ece else " |"))
        click.echo(f"\nAUROC by text similarity to the nearest training term ({protocol}):\n")
        click.echo("| set | aspect | stratum | terms | model | parent | upper bound |")
        click.echo("|---|---|---|---|---|---|---|")
        strata = part[part["text"] != "all"].pivot_table(index=["set", "aspect", "text", "terms"], columns="method",
                                                         values="auroc", sort=False).reset_index()
        for r in strata.to_dict("records"):
            click.echo(f"| {r['set']} | {r['aspect']} | {r['text']} | {r['terms']} | {r['model']:.3f} | "
                       f"{r['parent']:.3f} | {r['upper bound (trained on the term)']:.3f} |")

if __name__ == "__main__":
    main()
