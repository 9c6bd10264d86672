"""The ingest engine: plan what a run must do (``ingest``), decode, encode and write in stages with
a local or a Ray executor (``stages``, ``ray_executor``), and rebuild stale vectors
(``reembed``). ``Library.ingest`` and ``Library.reembed`` are its public face; nothing here
imports the jobs layer (``pipelines/``) or the interfaces above it."""
