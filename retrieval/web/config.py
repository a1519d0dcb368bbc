"""Options of ``prot-retrieve serve`` (light to import: the CLI builds its options from them)."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from index.errors import InputError


def _f(default, help: str, **click):
    return field(default=default, metadata={"help": help, **click})


@dataclass
class ServeConfig:
    """How the web app listens, where its jobs live, and what one job may hold."""

    host: str = _f("127.0.0.1", "Address to listen on; any other than loopback needs --token.")
    port: int = _f(8000, "Port to listen on (1-65535).", min=1)
    jobs_dir: str = _f("", "Folder of the jobs (inputs, state, results); they survive a restart. Empty: "
                           "$PROT_RETRIEVE_CACHE/jobs.")
    token: str = _f("", "Secret every request must carry (header 'Authorization: Bearer TOKEN', or ?token= once in "
                        "the browser); required to listen beyond loopback.")
    max_bytes: int = _f(50_000_000, "Largest upload (bytes, a FASTA or a .gz or a catalogue).", min=1)
    max_proteins: int = _f(20_000, "Most proteins in one job.", min=1)
    max_residues: int = _f(10_000_000, "Most residues in one job.", min=1)
    max_functions: int = _f(5_000, "Most functions in an uploaded catalogue.", min=1)
    sync_proteins: int = _f(20, "Most proteins the synchronous /api/annotate call takes.", min=1)
    workers: int = _f(1, "Jobs annotated at the same time (each worker holds its own copy of the pipeline).", min=1)
    keep_days: float = _f(7.0, "Jobs older than this are deleted (checked hourly).")
    search_block: int = _f(4096, "Proteins per block of a job (a homology search; a step of its resumable "
                                 "progress).", min=1)

    def check(self) -> None:
        try:
            loopback = self.host == "localhost" or ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback and not self.token:
            raise InputError(f"--host {self.host} listens beyond this machine: give --token SECRET too")
        if not 0 < self.port < 65536:
            raise InputError(f"--port must be 1-65535 (got {self.port})")
        if self.keep_days <= 0:
            raise InputError(f"--keep-days must be positive (got {self.keep_days})")
