"""The jobs layer: the scheduler (``pipelines.scheduler``) and what it runs, the shipped job file
(``jobs.toml``: ingest, re-embed, train, snapshot, retention, as ``embedder`` commands) and the
training configs (``configs/``). Only the interfaces (``embedder.cli``, ``embedder.service``)
import it; ``embedder.settings`` reads its TOML files through ``importlib.resources``."""
