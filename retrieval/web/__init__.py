"""``prot-retrieve serve``: a local web app (pages and a JSON API) over one loaded pipeline.
Needs the ``web`` extra: ``pip install "prot-retrieve[web]"``."""
