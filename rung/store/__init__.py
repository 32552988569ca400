"""Trace storage: every accepted request leaves one trace (see ``trace``)."""
