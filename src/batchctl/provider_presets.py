"""Presets beyond OpenAI, DashScope, New-API and the local server: providers that speak OpenAI's Batch
API with small differences. `providers.py` merges them into its one table.

How they differ on the wire (purposes, status spelling, envelopes, headers) is in `quirks.py`; what they
accept (limits, endpoints, windows) and what people should know is here. Figures not checked against
the provider's current docs say so in `verified` (and in docs/providers.md). Stdlib only.
"""

from __future__ import annotations

from batchctl.provider_spec import CHAT, COMPLETIONS, EMBEDDINGS, MB, RESPONSES, UNVERIFIED, ProviderSpec

_DAY = 86400.0
_ONLY_24H = dict(completion_windows="24h", window_units="h", min_window_s=_DAY, max_window_s=_DAY)
_AUDIO = ("/v1/audio/transcriptions", "/v1/audio/translations")
_ZHIPU_CHAT = "/v4/chat/completions"
_ZHIPU_EMBEDDINGS = "/v4/embeddings"

PRESET_PROVIDERS: dict[str, ProviderSpec] = {
    "groq": ProviderSpec(
        name="groq",
        max_requests=50_000,
        max_file_bytes=200 * MB,
        max_line_bytes=None,
        endpoints=(CHAT, *_AUDIO),
        default_poll_interval=10.0,
        live_counts=True,
        completion_windows="24h to 7d, in hours or days (e.g. 24h, 48h, 7d)",
        window_units="hd",
        min_window_s=_DAY,
        max_window_s=7 * _DAY,
        title="Groq",
        base_url="https://api.groq.com/openai/v1",
        batch_discount=0.5,
        docs_url="https://console.groq.com/docs/batch",
        verified=UNVERIFIED,
        notes=("Audio transcription and translation run in batches too.",),
    ),
    "together": ProviderSpec(
        name="together",
        max_requests=50_000,
        max_file_bytes=100 * MB,
        max_line_bytes=None,
        endpoints=(CHAT, COMPLETIONS),
        default_poll_interval=10.0,
        live_counts=False,  # a batch may report only `progress` (a percentage), no request_counts
        **_ONLY_24H,
        title="Together AI",
        base_url="https://api.together.xyz/v1",
        batch_discount=0.5,
        docs_url="https://docs.together.ai/docs/batch-inference",
        verified=UNVERIFIED,
        notes=(
            "Uploads use purpose `batch-api`; statuses arrive in upper case (COMPLETED).",
            "Create answers `{job, warning}`; a running batch may report `progress` (%) instead of counts.",
        ),
    ),
    "zhipu": ProviderSpec(
        name="zhipu",
        max_requests=50_000,
        max_file_bytes=100 * MB,
        max_line_bytes=None,
        endpoints=(_ZHIPU_CHAT, _ZHIPU_EMBEDDINGS),
        default_poll_interval=10.0,
        live_counts=True,
        **_ONLY_24H,
        title="Zhipu AI (BigModel)",
        base_url="https://open.bigmodel.cn/api/paas/v4",
        batch_discount=0.5,
        docs_url="https://docs.bigmodel.cn/cn/guide/tools/batch",
        verified=UNVERIFIED,
        endpoint_max_requests=((_ZHIPU_EMBEDDINGS, 10_000),),
        notes=(
            "Request lines carry `url: /v4/chat/completions` (or /v4/embeddings), not /v1/...",
            "An embeddings file holds at most 10,000 requests.",
        ),
    ),
    "moonshot": ProviderSpec(
        name="moonshot",
        max_requests=50_000,  # its docs state only the size limit; a profile can lower this
        max_file_bytes=100 * MB,
        max_line_bytes=None,
        endpoints=(CHAT,),
        default_poll_interval=10.0,
        live_counts=True,
        **_ONLY_24H,
        title="Moonshot AI (Kimi)",
        base_url="https://api.moonshot.cn/v1",
        batch_discount=0.5,
        docs_url="https://platform.moonshot.cn/docs/api/batch",
        verified=UNVERIFIED,
        refused_params=("n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty"),
        refused_params_verified=False,
        notes=(
            "Chat completions only.",
            "Some sampling parameters may be refused; `batchctl validate` warns of them (which ones is unverified).",
        ),
        unsupported=("embeddings", "completions", "responses"),
    ),
    "gemini": ProviderSpec(
        name="gemini",
        max_requests=50_000,  # the compatible layer's docs name no count; a profile can change it
        max_file_bytes=2048 * MB,
        max_line_bytes=None,
        endpoints=(CHAT, EMBEDDINGS),
        default_poll_interval=30.0,
        live_counts=True,
        **_ONLY_24H,
        title="Google Gemini (OpenAI-compatible layer)",
        base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
        batch_discount=0.5,
        docs_url="https://ai.google.dev/gemini-api/docs/openai#batch",
        verified=UNVERIFIED,
        notes=("Batch ids contain a slash (`batches/...`); batchctl encodes them in paths.",),
        unsupported=(
            "file upload and download through the OpenAI-compatible layer "
            "(upload with Google's Files API, then pass the file id)",
        ),
        route_advice=(
            (
                "files",
                "Gemini's OpenAI-compatible layer does not serve file upload/download",
                "Upload the input with Google's Files API (google-genai: client.files.upload) and create the batch "
                "with that file id, or run `batchctl serve --upstream` with this base URL in front of it.",
            ),
        ),
    ),
    "azure": ProviderSpec(
        name="azure",
        max_requests=100_000,
        max_file_bytes=200 * MB,
        max_line_bytes=None,
        endpoints=(CHAT, RESPONSES, EMBEDDINGS),
        default_poll_interval=30.0,
        live_counts=True,
        **_ONLY_24H,
        title="Azure OpenAI (global batch, v1 API)",
        base_url="https://{resource}.openai.azure.com/openai/v1/",
        batch_discount=0.5,
        docs_url="https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch",
        verified=UNVERIFIED,
        notes=(
            "`model` in each line is your deployment name, not the model's name.",
            "The key goes in an `api-key` header; `profile add --preset azure --resource NAME` fills the URL.",
        ),
        doctor_note=(
            "on Azure, `model` in each request line is your deployment name (as named in your resource), "
            "not the model's name; the key is sent in an `api-key` header"
        ),
    ),
    "litellm": ProviderSpec(
        name="litellm",
        max_requests=50_000,  # the routed provider's limits apply; a profile can set them
        max_file_bytes=200 * MB,
        max_line_bytes=None,
        endpoints=(CHAT, EMBEDDINGS, COMPLETIONS, RESPONSES),
        default_poll_interval=10.0,
        live_counts=True,
        **_ONLY_24H,
        title="LiteLLM proxy",
        base_url="http://localhost:4000/v1",
        docs_url="https://docs.litellm.ai/docs/batches",
        verified=UNVERIFIED,
        notes=(
            "File ids are long base64 strings; batchctl keeps them whole.",
            "When routing, uploads carry a `custom_llm_provider` form field.",
            "Limits, windows and price are those of the provider it routes to.",
        ),
    ),
}
