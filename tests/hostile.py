"""Hostile text for fuzz tests, and the one check that an output shows none of it raw.

What an attacker strings together in a name, a value or a server message: workflow commands,
HTML comments, terminal escapes, and every character class that escape.term() must escape.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bifrost_gitops.escape import has_unsafe

FUZZ = settings(
    max_examples=int(os.environ.get("BIFROST_FUZZ_EXAMPLES", "0")) or 25,
    deadline=None,
    derandomize=not os.environ.get("BIFROST_FUZZ_EXAMPLES"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Pieces an attacker strings together: workflow commands, HTML comments, escapes, and the
#: characters every output must escape.
ATOMS = [
    "::",
    "##[",
    "::error file=x,line=1::pwned",
    "::add-mask::",
    "::stop-commands::tok",
    "##[set-output name=x]y",
    "<!--",
    "%0A",
    "\\",
    "'",
    '"',
    ",",
    " ",
    "a",
    "Z",
    "é",
    "\U0001f680",
]
unsafe_char = st.one_of(
    st.characters(min_codepoint=0x00, max_codepoint=0x1F),
    st.characters(min_codepoint=0x7F, max_codepoint=0x9F),
    st.characters(min_codepoint=0x200B, max_codepoint=0x206F),
    st.sampled_from(["\u061c", "\ufeff", "\ufff9", "\ufffa", "\ufffb"]),
)
hostile = st.lists(st.one_of(st.sampled_from(ATOMS), unsafe_char), min_size=1, max_size=8).map("".join)

#: The only workflow commands we write: an annotation whose properties we built.
OURS = re.compile(r"::(error|warning) file=[^,:]*,line=\d+,col=\d+,title=[A-Z]\d{3}::")


def assert_safe(output: str, fmt: str) -> None:
    for line in output.split("\n"):
        assert not has_unsafe(line), f"{fmt}: unescaped character in {line!r}"
        if fmt == "github" and line.startswith("::"):
            # the runner parses a line as '::' command first and tries '##[' only when that
            # fails (ActionCommandManager.TryProcessCommand): in our own annotation, '##[' is text
            assert OURS.match(line), f"a workflow command we did not write: {line!r}"
            continue
        assert not line.lstrip(" \t").startswith("::"), f"{fmt}: forged workflow command {line!r}"
        assert "##[" not in line, f"{fmt}: forged runner command {line!r}"
