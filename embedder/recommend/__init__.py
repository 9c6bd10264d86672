"""Recommendation: interaction logs, collaborative filtering, hybrid Qdrant queries, evaluation."""
