"""Evaluation: routers, verifiers and cascades measured on outcome data."""
