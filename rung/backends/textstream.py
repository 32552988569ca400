"""Turn a stream of token bytes into text deltas, honouring stop strings.

Tokens may split a UTF-8 character, and a stop string may span tokens, so text is
held back until it can no longer be the start of either. Pure and model-free.
"""

from __future__ import annotations

import codecs


class StopTextStream:
    """Feed token bytes with :meth:`push`; each call returns the text that is safe to
    emit. After :attr:`stopped` turns true, everything else is discarded."""

    def __init__(self, stops: tuple[str, ...] = ()) -> None:
        self._stops = tuple(s for s in stops if s)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.stopped = False

    def _holdback(self) -> int:
        """Length of the longest tail of pending text that could begin a stop string."""
        best = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(self._pending)), best, -1):
                if self._pending.endswith(stop[:k]):
                    best = k
                    break
        return best

    def push(self, data: bytes) -> str:
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(data)
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0),
                  default=-1)
        if cut >= 0:
            out, self._pending, self.stopped = self._pending[:cut], "", True
            return out
        keep = self._holdback()
        out = self._pending[: len(self._pending) - keep]
        self._pending = self._pending[len(self._pending) - keep:]
        return out

    def flush(self) -> str:
        """The text still held back at the end of generation (no stop string followed)."""
        if self.stopped:
            return ""
        out = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return out
