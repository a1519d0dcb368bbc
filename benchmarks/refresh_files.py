"""Release-format files from ../shared/data, for measuring ``prot-retrieve refresh`` on real data.

    python benchmarks/refresh_files.py OUT [--data ../shared/data]

Writes, from the same proteins and annotations the shipped references were built from:
- ``exp7sp.fasta.gz`` + ``exp7sp.gaf.gz``: the experimental annotations of 7 species as GAF 2.2;
- ``sp2014.dat.gz``: the Swiss-Prot 2014 proteins of the CAFA3 training set as a UniProt flat file
  (sequence, ``OX``, and a ``DR GO;`` line per annotation).

The shared TSVs keep no evidence code per annotation, so the 7-species lines say EXP (they are all
experimental) and the Swiss-Prot lines IEA (all evidence, electronic included): build with
``--evidence all``. The CAFA3 benchmark targets are left out, as in the shipped references.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import click

from retrieval.io.fasta import read_fasta
from retrieval.io.tables import read_annotations

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def gaf_line(protein: str, term: str, taxon: str, code: str) -> str:
    return "\t".join(["UniProtKB", protein, protein, "enables", term, "GO_REF:0000000", code, "", "F", "", "",
                      "protein", f"taxon:{taxon or '1'}", "20190129", "UniProt", "", ""]) + "\n"


def dat_entry(record, terms: list[str]) -> str:
    lines = [f"ID   {record.id}_TEST             Reviewed;         {len(record.sequence)} AA.",
             f"AC   {record.id};", "DE   RecName: Full=protein;"]
    lines += [f"OX   NCBI_TaxID={record.taxon};"] if record.taxon else []
    lines += [f"DR   GO; {t}; F:term; IEA:UniProtKB." for t in terms]
    lines.append(f"SQ   SEQUENCE   {len(record.sequence)} AA;  0 MW;  0000000000000000 CRC64;")
    seq = record.sequence
    lines += ["     " + " ".join(seq[i + j: i + j + 10] for j in range(0, 60, 10) if seq[i + j: i + j + 10])
              for i in range(0, len(seq), 60)]
    return "\n".join(lines) + "\n//\n"


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
def main(out: str, data: str) -> None:
    out_dir, data_dir = Path(out), Path(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    held_out = lambda r: r.tags.get("cafa3_benchmark") == "1"  # noqa: E731
    seven = [r for r in read_fasta(data_dir / "train_goa2019exp_7sp" / "sequences.fasta.gz") if not held_out(r)]
    taxa = {r.id: r.taxon for r in seven}
    with gzip.open(out_dir / "exp7sp.fasta.gz", "wt") as fh:
        fh.writelines(f">{r.id}{' OX=' + r.taxon if r.taxon else ''}\n{r.sequence}\n" for r in seven)
    table = read_annotations(data_dir / "train_goa2019exp_7sp" / "annotations_leaf_exp.tsv.gz")
    with gzip.open(out_dir / "exp7sp.gaf.gz", "wt") as fh:
        fh.write("!gaf-version: 2.2\n")
        fh.writelines(gaf_line(p, t, taxa.get(p, ""), "EXP") for p, t in zip(table["protein"], table["term"])
                      if p in taxa)
    sp2014 = [r for r in read_fasta(data_dir / "train_cafa3ids_sp2014" / "sequences.fasta.gz") if not held_out(r)]
    table = read_annotations(data_dir / "train_cafa3ids_sp2014" / "annotations_sp2014_allevidence.tsv.gz")
    terms = table.groupby("protein")["term"].agg(list).to_dict()
    with gzip.open(out_dir / "sp2014.dat.gz", "wt") as fh:
        fh.writelines(dat_entry(r, terms[r.id]) for r in sp2014 if r.id in terms)
    click.echo(f"{len(seven)} + {sum(r.id in terms for r in sp2014)} proteins -> {out_dir}", err=True)


if __name__ == "__main__":
    main()
