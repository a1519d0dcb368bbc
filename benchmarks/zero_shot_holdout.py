"""Zero-shot by hold-out: GO terms removed from training (with their subtrees), then scored.

    python benchmarks/zero_shot_holdout.py pick [--seed 0] > benchmarks/data/held_out_terms.txt
    python benchmarks/zero_shot_holdout.py evaluate --held-out-model DIR --normal-model DIR [--hybrid ...]

``pick`` writes the term list one retrain holds out (``prot-retrieve train --hold-out-terms`` and
``build-reference --hold-out-terms``), tagged by protocol:

- ``deepgozero``, protocol (a): the 16 terms DeepGOZero held out (Kulmanov & Hoehndorf 2022);
- ``subtree``, protocol (b): per aspect, a seeded 5 % of the terms with 20-500 propagated training
  proteins (train_goa2019exp_7sp minus the CAFA3 benchmark proteins), none an ancestor or a
  descendant of another held-out term, of either protocol.

Both protocols share one retrain: a term of one is never in the subtree of a term of the other, so
each is unseen in the same sense as if it had been held out alone.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np

from cafa3 import DEFAULT_DATA, cafa3_setting

DEEPGOZERO = {
    "MFO": ["GO:0001227", "GO:0001228", "GO:0003735", "GO:0004867", "GO:0005096"],
    "BPO": ["GO:0000381", "GO:0032729", "GO:0032755", "GO:0032760", "GO:0046330", "GO:0051897", "GO:0120162"],
    "CCO": ["GO:0005762", "GO:0022625", "GO:0042788", "GO:1904813"],
}
SUBTREE_FRACTION, MIN_PROTEINS, MAX_PROTEINS = 0.05, 20, 500


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
def pick(data: str, seed: int) -> None:
    """Print the held-out term list (GO id, then '# protocol aspect proteins')."""
    setting = cafa3_setting(Path(data))
    onto, prop = setting.ontology, setting.propagator
    counts = np.asarray(setting.labels.sum(axis=0)).ravel()
    dgz = [t for terms in DEEPGOZERO.values() for t in terms]
    columns = np.array([onto.index[t] for t in dgz])
    related = np.asarray((prop.ancestors[:, columns].getnnz(axis=1) > 0)).ravel()  # descendants
    related[prop.closure_of(columns)] = True  # and ancestors
    subtrees = pick_subtrees(onto, prop, setting.labels, related, seed)
    click.echo(f"# held out by benchmarks/zero_shot_holdout.py pick --seed {seed} (GO {onto.release})")
    for protocol, groups in (("deepgozero", DEEPGOZERO), ("subtree", subtrees)):
        for aspect, terms in groups.items():
            for t in terms:
                click.echo(f"{t}\t# {protocol} {aspect} {int(counts[onto.index[t]])}")


if __name__ == "__main__":
    main()
