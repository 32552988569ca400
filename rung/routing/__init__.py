"""Routing: scorers that say how much a request needs a stronger tier, and their metrics."""
