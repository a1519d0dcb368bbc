"""GO terms the model never saw in training: how well does it score them? Prints one table.

    python benchmarks/zero_shot.py [--data ../shared/data] [--model DIR|shipped] [--hybrid] [--seed 0]

Protocol (CAFA3 unseen terms): the live GO terms that no training protein carries, even after
propagation (train_goa2019exp_7sp minus the CAFA3 benchmark proteins), and that have at least 3
positive proteins among the CAFA3 NK + LK targets annotated in their aspect. Those targets are
the evaluation proteins of each term: positives carry the term, negatives are all the others of
the aspect. Each term is scored four ways:

- model: the model's probability for the term (its text, no id memory: it has none for it);
- parent: the model's probability for the term's parents, the minimum over them (what the GO
  graph gives without any text);
- nearest seen term: the model's probability for the seen term of the same aspect whose text
  vector (the text tower, no id) is the most similar;
- random: seeded uniform scores;
- model, borrowed prior: the model's score with the prior bias of the term's 5 nearest seen terms by
  text (weighted by similarity) instead of the constant prior of unseen terms;
- model, borrowed prior and memory: also shifting its vector as their id memory shifts theirs.

Per aspect: mean per-term AUROC and AUPR; sibling AUROC (negatives: the proteins that carry every
parent of the term but not the term; terms with at least one such negative); protein-centric Fmax
over the unseen terms alone; ECE of the scores on the (protein, unseen term) pairs. Rows are also
split by how similar each term's text is to its nearest seen term (text leakage): below and above
the median similarity. ``--hybrid`` scores with the shipped references (the homology re-ranker;
the model's score of an unseen term then borrows from the annotated GO terms nearest in meaning,
as in a whole-catalogue run).
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy.stats import rankdata

from cafa3 import DEFAULT_DATA, _model, cafa3_setting, with_cafa_taxa
from retrieval.evaluation import expected_calibration_error

ASPECTS = {"MFO": "molecular_function", "BPO": "biological_process", "CCO": "cellular_component"}
NEIGHBOURS = 5  # seen terms an unseen one borrows from
SHARPNESS = 20.0  # their weights: exp(SHARPNESS * (similarity - best similarity))


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC (ties count half)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    if not hits.any():
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def fmax(scores: np.ndarray, truth: np.ndarray) -> float:
    """Protein-centric Fmax of (proteins x terms) scores against truth, CAFA style."""
    best = 0.0
    has_truth = truth.any(1)
    for t in np.linspace(0.01, 0.99, 99):
        predicted = scores >= t
        covered = predicted.any(1)
        if not covered.any():
            continue
        tp = (predicted & truth).sum(1)
        precision = (tp[covered] / predicted[covered].sum(1)).mean()
        recall = (tp[has_truth] / truth[has_truth].sum(1)).mean()
        if precision + recall:
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def cafa3_truth(setting) -> dict[str, set[str]]:
    """Propagated truth of the CAFA3 NK and LK targets: protein -> its terms."""
    live = np.asarray(setting.ontology.live_ids, dtype=object)
    truth: dict[str, set[str]] = {}
    for evaluator in (setting.nk, setting.lk):
        for i, protein in enumerate(evaluator.proteins):
            truth.setdefault(protein, set()).update(live[evaluator.truth[i].indices])
    return truth


def unseen_terms(setting, truth: dict[str, set[str]], min_positive: int = 3) -> pd.DataFrame:
    """(term, aspect, positives) of the live terms without a propagated training annotation."""
    onto = setting.ontology
    trained = np.asarray(setting.labels.sum(0)).ravel() > 0
    counts = pd.Series([t for terms in truth.values() for t in terms]).value_counts()
    rows = [(t, onto.terms[t].aspect, int(counts.get(t, 0))) for i, t in enumerate(onto.live_ids)
            if not trained[i] and counts.get(t, 0) >= min_positive]
    return pd.DataFrame(rows, columns=["term", "aspect", "positives"])


def evaluation_proteins(setting, truth: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per aspect, the targets with truth in it."""
    roots = {setting.ontology.terms[setting.ontology.live_ids[r]].aspect: setting.ontology.live_ids[r]
             for r in setting.ontology.roots}
    return {aspect: sorted(p for p, terms in truth.items() if root in terms) for aspect, root in roots.items()}


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--model", default="shipped", show_default=True, help="Model folder ('shipped': the shipped model).")
@click.option("--hybrid", is_flag=True, help="Score with the shipped homology references.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random baseline.")
def main(data: str, model: str, hybrid: bool, seed: int) -> None:
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.feature_cache import cache_dir

    logging.basicConfig(level=logging.WARNING)
    setting = cafa3_setting(Path(data))
    onto = setting.ontology
    truth = cafa3_truth(setting)
    terms = unseen_terms(setting, truth)
    proteins = evaluation_proteins(setting, truth)
    truth_pairs = {(p, t) for p, ts in truth.items() for t in ts}
    annotator = Annotator.from_pretrained(_model(model), reference="default" if hybrid else None)
    text = annotator.model.text_encoder
    catalogue = FunctionCatalogue.from_ontology(onto)
    ids = catalogue.ids
    row = {t: i for i, t in enumerate(ids)}
    trained = np.asarray(setting.labels.sum(0)).ravel() > 0  # live-term order = catalogue order
    vectors, _ = text.encode(text.function_texts(catalogue, onto), cache_dir=cache_dir() / "features")  # no id memory
    parents = {t: [p for p in (*onto.terms[t].is_a, *onto.terms[t].part_of) if p in row] for t in terms["term"]}
    nearest, similarity, neighbours = {}, {}, {}
    aspects = catalogue.table["aspect"].to_numpy()
    for t, aspect in zip(terms["term"], terms["aspect"]):
        candidates = np.flatnonzero(trained & (aspects == aspect))
        sims = vectors[candidates] @ vectors[row[t]]
        top = np.argsort(-sims)[:NEIGHBOURS]
        nearest[t], similarity[t] = ids[candidates[top[0]]], float(sims[top[0]])
        neighbours[t] = (candidates[top], np.exp(SHARPNESS * (sims[top] - sims[top[0]])))
    needed = sorted(set(terms["term"]) | {p for ps in parents.values() for p in ps} | set(nearest.values()))
    sub = FunctionCatalogue(catalogue.table.iloc[[row[t] for t in needed]])
    records = {r.id: r for r in with_cafa_taxa(setting.records)}
    everyone = [records[p] for p in sorted({p for ps in proteins.values() for p in ps})]
    scores = annotator.score(everyone, sub)
    borrowed = _borrowed(text, catalogue, onto, vectors, list(terms["term"]), row, neighbours)
    meaning = text.meaning(text.function_texts(FunctionCatalogue(catalogue.table.iloc[[row[t] for t in terms["term"]]]),
                                               onto), cache_dir=cache_dir() / "features")
    for name, (v, b) in borrowed.items():
        extra = annotator.score_vectors(everyone, [f"{t}|{name}" for t in terms["term"]], v, b, meaning)
        scores = scores.join(extra)
    rng = np.random.default_rng(seed)
    per_term, pairs = [], {m: [] for m in ("model", *(f"model, borrowed {n}" for n in borrowed), "parent",
                                           "nearest seen term", "random")}
    for t, aspect in zip(terms["term"], terms["aspect"]):
        people = proteins[aspect]
        positive = np.array([(p, t) in truth_pairs for p in people])
        methods = {"model": scores.loc[people, t].to_numpy(),
                   **{f"model, borrowed {name}": scores.loc[people, f"{t}|{name}"].to_numpy() for name in borrowed},
                   "parent": scores.loc[people, parents[t]].min(axis=1).to_numpy() if parents[t] else np.zeros(len(people)),
                   "nearest seen term": scores.loc[people, nearest[t]].to_numpy(),
                   "random": rng.random(len(people))}
        siblings = np.array([all((p, q) in truth_pairs for q in parents[t]) for p in people]) & ~positive
        for method, s in methods.items():
            sib = np.concatenate([s[positive], s[siblings]])
            per_term.append({"term": t, "aspect": aspect, "method": method, "similarity": similarity[t],
                             "auroc": auroc(s, positive), "aupr": average_precision(s, positive),
                             "sibling_auroc": auroc(sib, np.r_[np.ones(positive.sum(), bool),
                                                                np.zeros(siblings.sum(), bool)])
                             if siblings.any() else float("nan")})
            pairs[method].append((aspect, t, people, s, positive))
    table = pd.DataFrame(per_term)
    median = table["similarity"].median()
    table["text"] = np.where(table["similarity"] >= median, f"similar (>= {median:.2f})", f"distant (< {median:.2f})")
    rows = []
    for (aspect, method), group in table.groupby(["aspect", "method"], sort=False):
        rows.append(_summary(aspect, method, "all", group, pairs[method], proteins))
        for stratum, part in group.groupby("text"):
            rows.append(_summary(aspect, method, stratum, part, None, proteins))
    out = pd.DataFrame(rows)
    counts = terms.groupby("aspect").size()
    click.echo(f"model {annotator.model.fingerprint()} ({'hybrid' if hybrid else 'two towers'}); unseen terms: "
               + ", ".join(f"{a} {counts.get(a, 0)}" for a in ASPECTS))
    click.echo("| aspect | terms | method | AUROC | AUPR | sibling AUROC (terms) | Fmax | ECE |")
    click.echo("|---|---|---|---|---|---|---|---|")
    for r in out.sort_values(["aspect", "text"], key=lambda c: c.map({"MFO": 0, "BPO": 1, "CCO": 2}) if c.name == "aspect" else c != "all", kind="stable").itertuples():
        click.echo(f"| {r.aspect} | {r.terms} ({r.text}) | {r.method} | {r.auroc:.3f} | {r.aupr:.3f} | "
                   f"{r.sibling:.3f} ({r.sibling_terms}) | {r.fmax} | {r.ece} |")


def _borrowed(text, catalogue, onto, vectors, unseen, row, neighbours) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Unseen terms scored with what their nearest seen terms (by text) learned: their prior bias
    (similarity-weighted), and also their id memory (the shift it gives their vectors)."""
    from index.catalogue import FunctionCatalogue

    own_v, own_b = text.encode(text.function_texts(FunctionCatalogue(catalogue.table.iloc[[row[t] for t in unseen]]),
                                                   onto), unseen)
    prior, memory = own_b.copy(), own_v.copy()
    for i, t in enumerate(unseen):
        rows, weight = neighbours[t]
        seen = FunctionCatalogue(catalogue.table.iloc[rows])
        full_v, full_b = text.encode(text.function_texts(seen, onto), seen.ids)
        weight = weight / weight.sum()
        prior[i] = weight @ full_b
        shifted = own_v[i] + weight @ (full_v - vectors[rows])
        memory[i] = shifted / np.linalg.norm(shifted)
    return {"prior": (own_v, prior), "prior and memory": (memory, prior)}


def _summary(aspect, method, text, group: pd.DataFrame, pairs, proteins) -> dict:
    summary = {"aspect": aspect, "method": method, "text": text, "terms": len(group), "auroc": group["auroc"].mean(),
               "aupr": group["aupr"].mean(), "sibling": group["sibling_auroc"].mean(),
               "sibling_terms": int(group["sibling_auroc"].notna().sum()), "fmax": "", "ece": ""}
    if pairs is not None:  # protein-centric figures over all of the aspect's unseen terms
        mine = [p for p in pairs if p[0] == aspect]
        score = np.column_stack([p[3] for p in mine])
        truth = np.column_stack([p[4] for p in mine])
        summary["fmax"] = f"{fmax(score, truth):.3f}"
        summary["ece"] = f"{expected_calibration_error(score.ravel(), truth.ravel()):.3f}" \
            if method != "random" else ""
    return summary


if __name__ == "__main__":
    main()
