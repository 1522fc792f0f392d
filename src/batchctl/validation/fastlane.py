"""The common request line, decoded straight into typed records: validate's fast lane.

Most lines of a big Batch input file have one shape: a chat request with `custom_id`, `method`,
`url` and a body of `model`, `messages` (each a `role` and a string `content`) and a few sampling
parameters. msgspec decodes such a line into the records below about twice as fast as into dicts
(no dict per object, field names matched once, message texts left as they are in the line), and in
doing so already checks every type the validator would. msgspec checks a skipped text's JSON syntax
but not its UTF-8: `checks.py` decodes each non-ASCII text itself. A line of any other shape (an unknown field, a content array, a message `name`, a
number where a string goes, ...) fails to decode here and takes the general road in `checks.py`,
which judges it in full; so the fast lane only ever decides lines that the general road would find
without problems, and both roads give the same report (`tests/test_validation_fastlane.py`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, Struct

# The body parameters a common chat line may carry besides model and messages are typed Any: read by
# nothing in validation (the output limits and n by the estimate), so any JSON value passes here.


class Message(Struct, forbid_unknown_fields=True, gc=False):
    role: str
    content: Raw  # the JSON text as it is in the line: a string is only decoded if its tokens are counted


class ChatBody(Struct, forbid_unknown_fields=True, gc=False):
    model: str
    messages: list[Message]
    max_completion_tokens: Any = UNSET
    max_tokens: Any = UNSET
    max_output_tokens: Any = UNSET
    n: Any = UNSET
    temperature: Any = UNSET
    top_p: Any = UNSET
    seed: Any = UNSET
    stop: Any = UNSET
    presence_penalty: Any = UNSET
    frequency_penalty: Any = UNSET
    response_format: Any = UNSET
    reasoning_effort: Any = UNSET
    logprobs: Any = UNSET
    top_logprobs: Any = UNSET
    user: Any = UNSET
    metadata: Any = UNSET


class ChatLine(Struct, forbid_unknown_fields=True, gc=False):
    custom_id: str
    method: str
    url: str
    body: ChatBody


decode_chat_line = msgspec.json.Decoder(ChatLine).decode
decode_string = msgspec.json.Decoder(str).decode  # a JSON string literal (a `Message.content`) -> str
# Whatever the typed decoder refuses, for any reason: the line goes the general way.
NOT_COMMON = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)
