"""Fuzz: whatever a Bifrost server (or anyone with its UI) writes into names, values and error
messages, plan's and apply's reports show it escaped, in text and in JSON, and the JSON keeps it."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bifrost_gitops.deploy.apply import Result
from bifrost_gitops.deploy.plan import Change, Op, Plan
from bifrost_gitops.deploy.render import render_json, render_results, render_text
from bifrost_gitops.deploy.spec import Action, Edit, Resource
from hostile import FUZZ, assert_safe, hostile

values = st.one_of(st.none(), st.integers(), st.booleans(), hostile, st.lists(hostile, max_size=3))
changes = st.builds(
    Change,
    field=hostile,
    action=st.sampled_from(["add", "change", "remove", "set", "rotate", "keep", "clear"]).map(Edit),
    old=values,
    new=values,
    secret=st.booleans(),
)


@st.composite
def ops(draw: st.DrawFn) -> Op:
    integration, org = draw(hostile), draw(hostile)
    return Op(
        action=draw(st.sampled_from(["create", "update", "delete", "refresh"]).map(Action)),
        resource=draw(
            st.sampled_from(["integration", "schema", "defaults", "mapping", "oauth"]).map(Resource)
        ),
        address=f"{integration}/{org}",
        integration=integration,
        method="PUT",
        path=draw(hostile),
        changes=draw(st.lists(changes, max_size=3)),
        destructive=draw(st.booleans()),
    )


plans = st.builds(
    Plan,
    ops=st.lists(ops(), max_size=4),
    drift=st.lists(hostile, max_size=2),
    blocked=st.lists(hostile, max_size=2),
    errors=st.lists(hostile, max_size=2),
)


@FUZZ
@given(plan=plans)
def test_plan_reports_show_server_text_escaped(plan: Plan) -> None:
    assert_safe(render_text(plan), "text")
    doc = render_json(plan)
    assert_safe(doc, "json")
    assert doc.isascii()
    parsed = json.loads(doc)
    assert [o["address"] for o in parsed["operations"]] == [o.address for o in plan.ops]
    assert parsed["drift"] == plan.drift and parsed["errors"] == plan.errors


@FUZZ
@given(
    results=st.lists(
        st.builds(Result, op=ops(), status=st.sampled_from(["ok", "failed", "skipped"]), message=hostile),
        max_size=4,
    )
)
def test_apply_reports_show_server_messages_escaped(results: list[Result]) -> None:
    text = render_results(results, 7, "text")
    assert_safe(text, "text")
    assert text.count("\n") == len(results) + 1 + (any(r.status != "ok" for r in results))
    doc = render_results(results, 7, "json")
    assert_safe(doc, "json")
    assert [r["message"] for r in json.loads(doc)["results"]] == [r.message for r in results]
