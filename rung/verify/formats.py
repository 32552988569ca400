"""Format validators: when the request asked for JSON, the answer must be JSON (and
match the schema when one was given)."""

from __future__ import annotations

import json

from rung.types import Answer, ChatRequest, Verdict
from rung.verify.base import Generate


class JsonVerifier:
    name = "json"
    needs_logprobs = False

    async def verify(self, request: ChatRequest, answer: Answer,
                     generate: Generate) -> Verdict:
        rf = request.response_format
        if rf.type == "text":
            return Verdict(self.name, 0.0, True, "json not requested")
        try:
            value = json.loads(answer.text)
        except json.JSONDecodeError as exc:
            return Verdict(self.name, 1.0, False, f"invalid JSON: {exc.msg}")
        if rf.type == "json_schema" and rf.schema is not None:
            import jsonschema

            try:
                jsonschema.validate(value, rf.schema)
            except jsonschema.ValidationError as exc:
                return Verdict(self.name, 1.0, False, f"schema: {exc.message[:80]}")
            except jsonschema.SchemaError as exc:
                return Verdict(self.name, 0.5, True, f"unusable schema: {exc.message[:60]}")
        return Verdict(self.name, 0.0, True, "valid")
