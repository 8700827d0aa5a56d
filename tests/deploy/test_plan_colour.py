"""plan's text report is coloured where a terminal reads it (or colour is forced), never in JSON."""

from __future__ import annotations

import re

from .deploy_support import Env

SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_plan_colour_follows_the_environment(denv: Env) -> None:
    e = denv
    plain = e.cli("plan", str(e.root))
    assert plain.code == 0 and "+ create integration HaloPSA" in plain.stdout
    assert "\x1b" not in plain.stdout  # not a terminal
    forced = e.cli("plan", str(e.root), env=e.env(FORCE_COLOR="1"))
    assert "\x1b[32m+ create integration HaloPSA\x1b[0m\n" in forced.stdout
    assert forced.stdout.splitlines()[-1].startswith("\x1b[1mPlan: ")
    assert SGR.sub("", forced.stdout) == plain.stdout
    assert e.cli("plan", str(e.root), env=e.env(FORCE_COLOR="1", NO_COLOR="1")).stdout == plain.stdout
    assert "\x1b" not in e.cli("plan", str(e.root), "--format", "json", env=e.env(FORCE_COLOR="1")).stdout
