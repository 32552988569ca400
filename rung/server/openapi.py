"""rung's OpenAPI document, generated from the wire models (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rung import __version__
from rung.server.embeddings import EmbeddingsBody
from rung.server.feedback import FeedbackBody
from rung.server.responses_wire import ResponsesBody
from rung.server.wire import ChatCompletionBody

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["message", "type", "param", "code"],
        "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                       "param": {"type": ["string", "null"]},
                       "code": {"type": ["string", "null"]}},
    }},
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s schema and the schemas it refers to, as components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                     by_alias=True)
    defs = schema.pop("$defs", {})
    return {model.__name__: schema, **defs}


def openapi() -> dict[str, Any]:
    body = ChatCompletionBody.model_json_schema(ref_template="#/components/schemas/{model}",
                                                by_alias=True)
    defs = body.pop("$defs", {})
    ok_json = {"description": "OK", "content": {"application/json": {"schema": {
        "type": "object"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "rung", "version": __version__,
                 "description": "OpenAI-compatible, small-model-first LLM gateway."},
        "paths": {
            "/v1/chat/completions": {"post": {
                "operationId": "createChatCompletion",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ChatCompletionBody"}}}},
                "responses": {
                    "200": {"description": "A completion, or an SSE stream when stream is "
                            "true", "content": {"application/json": {"schema": {
                                "type": "object"}}, "text/event-stream": {
                                "schema": {"type": "string"}}}},
                    **_errors(400, 401, 404, 413, 429, 502, 503, 504)}}},
            "/v1/responses": {"post": {
                "operationId": "createResponse",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ResponsesBody"}}}},
                "responses": {
                    "200": {"description": "A response, or typed SSE events when stream is "
                            "true", "content": {"application/json": {"schema": {
                                "type": "object"}}, "text/event-stream": {
                                "schema": {"type": "string"}}}},
                    **_errors(400, 401, 404, 413, 429, 502, 503, 504)}}},
            "/v1/feedback": {"post": {
                "operationId": "createFeedback",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/FeedbackBody"}}}},
                "responses": {"200": ok_json, **_errors(400, 401, 403, 404, 413)}}},
            "/v1/embeddings": {"post": {
                "operationId": "createEmbedding",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/EmbeddingsBody"}}}},
                "responses": {"200": ok_json, **_errors(400, 401, 404, 413, 429, 502, 503,
                                                         504)}}},
            "/v1/models": {"get": {"operationId": "listModels",
                                   "responses": {"200": ok_json, **_errors(401)}}},
            "/healthz": {"get": {"operationId": "healthz", "responses": {"200": ok_json}}},
            "/readyz": {"get": {"operationId": "readyz", "responses": {
                "200": ok_json, "503": ok_json}}},
        },
        "components": {"schemas": {
            "ChatCompletionBody": body, "Error": _ERROR, **defs,
            "FeedbackBody": FeedbackBody.model_json_schema(by_alias=True),
            **_schema(ResponsesBody), **_schema(EmbeddingsBody)}},
    }
