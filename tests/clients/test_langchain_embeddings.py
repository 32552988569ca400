"""LangChain's OpenAIEmbeddings against rung's local MiniLM tier: documents and a query
come back as sentence-transformers' vectors. LangChain sends token-id arrays unless
``check_embedding_ctx_length=False`` (its tokenizer is OpenAI's, and it fetches its
vocabulary from the internet): with it off it sends text, which the local tier takes."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_openai import OpenAIEmbeddings
from pydantic import SecretStr

from rung.backends.embedding import local_missing
from tests.clients.conftest import TIMEOUT_S
from tests.conftest import config_of, rung_server, upstream_tier
from tests.server.test_embeddings import SENTENCES, TOL, VECTORS

pytestmark = pytest.mark.skipif(local_missing() is not None, reason=str(local_missing()))


def test_documents_and_query_equal_sentence_transformers() -> None:
    with rung_server(config_of(tiers=[upstream_tier("up", "http://127.0.0.1:9")])) as server:
        emb = OpenAIEmbeddings(model="all-minilm-l6-v2", base_url=f"{server.url}/v1",
                               api_key=SecretStr("unused"), check_embedding_ctx_length=False,
                               timeout=TIMEOUT_S, max_retries=0, chunk_size=3)
        docs = emb.embed_documents(SENTENCES)  # in requests of 3 texts
        query = emb.embed_query(SENTENCES[0])
    assert np.abs(np.array(docs) - VECTORS).max() < TOL
    assert np.abs(np.array(query) - VECTORS[0]).max() < TOL
