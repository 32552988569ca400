"""Hold BLAS to one thread, as ``rung.drift.report.compare`` does: the drift statistics are
many small matrix products, on which BLAS threads only contend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
