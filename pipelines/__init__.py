"""Batch jobs composed from the library: ingest (and, later, reembed and train)."""
