"""JSON's value type, for data that is plain JSON (bundle records, index entries, API replies).

Stdlib-only so every side (compile, runtime, deploy) can name it without importing the others.
"""

from __future__ import annotations

from typing import TypeAlias

#: a JSON value (a config value, a default, an override, a parsed reply)
Json: TypeAlias = "str | int | float | bool | list[Json] | dict[str, Json] | None"
#: a JSON object
JsonObject: TypeAlias = "dict[str, Json]"
