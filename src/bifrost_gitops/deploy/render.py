"""Plan and apply reports, as text or JSON. Nothing here can print a secret: Changes hold none.

The reports carry names and text read from Bifrost (integration, organization and connection
names, values, server messages), which anyone with its UI can set: every text line passes
through :func:`~bifrost_gitops.escape.term` (a name cannot start a line, forge a workflow
command or move the cursor) and JSON is written ASCII-only by :func:`~bifrost_gitops.escape.to_json`.
"""

from __future__ import annotations

from ..colour import Style
from ..colour import lines as styled_lines
from ..escape import term, to_json
from .apply import Result
from .plan import Op, Plan, show
from .plan.batch import planned_requests
from .spec import Action, Edit, Status, TokenState

#: An operation's colour by what it does: created green, changed yellow, deleted red.
_SIGN_STYLE = {"+": Style.GREEN, "~": Style.YELLOW, "-": Style.RED, ">": Style.YELLOW}


#: an organization's own token: fine green, one apply refreshes yellow, one an admin must connect red
_CONNECTION_STYLE = {
    TokenState.CONNECTED: Style.GREEN,
    TokenState.EXPIRED: Style.YELLOW,
    TokenState.FAILED: Style.RED,
    TokenState.MISSING: Style.RED,
}


def _op_lines(op: Op) -> list[tuple[str, Style]]:
    head = op.title() + (" (destructive)" if op.destructive and op.action is not Action.DELETE else "")
    style = Style.RED if op.destructive else _SIGN_STYLE.get(op.action.sign, Style.NONE)
    if op.action is Action.UPDATE and len(op.changes) == 1:
        c = op.changes[0]
        if c.action is Edit.CHANGE and not c.secret:
            return [(f"{head}: {c.field} {show(c.old)} -> {show(c.new)}", style)]
    return [
        (head, style),
        *(("    " + c.text(), _SIGN_STYLE.get(c.action.sign, Style.NONE)) for c in op.changes),
    ]


def summary(plan: Plan) -> str:
    c = plan.counts()
    parts = [f"{c['create']} to create", f"{c['update']} to update", f"{c['delete']} to delete"]
    if c["refresh"]:
        parts.append(f"{c['refresh']} token refresh{'es' if c['refresh'] > 1 else ''}")
    if c.get("disconnect"):
        parts.append(
            f"{c['disconnect']} organization token{'s' if c['disconnect'] > 1 else ''} to disconnect"
        )
    text = "Plan: " + ", ".join(parts)
    if not plan.changes:
        text = "No changes: Bifrost matches the repository"
    extra = []
    if plan.drift:
        extra.append(f"{len(plan.drift)} drift")
    extra.append(f"{plan.read_requests} requests")
    if plan.changes:
        extra.append(f"apply: {_operations(plan)}")
    return f"{text} ({'; '.join(extra)})."


def _operations(plan: Plan) -> str:
    """How many operations apply sends in how many requests (mapping batches carry up to 500)."""
    n, sent = len(plan.changes), planned_requests(plan)
    text = f"{n} operation{'s' if n != 1 else ''} in {sent} request{'s' if sent != 1 else ''}"
    if plan.batches:
        k = len(plan.batches)
        batched = sum(len(b.ops) for b in plan.batches)
        text += f", {batched} mapping creates in {k} batch{'es' if k != 1 else ''}"
    return text


def _per_get_note(names: list[str]) -> str:
    """Why a changed client-credentials provider gets no token refresh: its token URL holds
    {entity_id}, so Bifrost fetches a token per organization on each SDK get and stores none."""
    return (
        f"(no token refresh for {', '.join(names)}: the token URL holds {{entity_id}}, so Bifrost "
        "fetches a token for each organization on every SDK get)"
    )


def render_text(plan: Plan, colour: bool = False) -> str:
    """The plan as terminal text; with COLOUR, each operation by what it does, errors and
    refusals red, drift yellow, the summary bold. Lines are escaped before they are coloured."""
    rows: list[tuple[str, Style]] = []
    for op in plan.ops:
        if op.bookkeeping:
            continue
        rows += _op_lines(op)
    if plan.fetched_per_get:
        rows.append((_per_get_note(plan.fetched_per_get), Style.DIM))
    if any(o.bookkeeping for o in plan.ops):
        rows.append((f"(apply also records ownership in the integration {plan.ops[-1].address})", Style.DIM))
    if plan.connections:
        rows.append(("Organizations with their own OAuth connection (not changes):", Style.NONE))
        rows += [(f"  {c.text()}", _CONNECTION_STYLE[c.state]) for c in plan.connections]
    rows += [(f"error: {e}", Style.RED) for e in plan.errors]
    rows += [(f"refused: {b}", Style.RED) for b in plan.blocked]
    if plan.drift:
        rows.append(("Drift (left alone):", Style.YELLOW))
        rows += [(f"  ! {d}", Style.YELLOW) for d in plan.drift]
    rows.append((summary(plan), Style.BOLD))
    return styled_lines(rows, colour)


def _text(lines: list[str]) -> str:
    """LINES as terminal text, each escaped whole (our own words hold nothing to escape)."""
    return "".join(term(line) + "\n" for line in lines)


def render_json(plan: Plan) -> str:
    batch_of = {i: n for n, b in enumerate(plan.batches) for i in b.ops}
    operations = [
        {**o.as_json(), **({"batch": batch_of[i]} if i in batch_of else {})}
        for i, o in enumerate(plan.ops)
        if not o.bookkeeping
    ]
    doc: dict[str, object] = {
        "operations": operations,
        "bookkeeping": [o.as_json() for o in plan.ops if o.bookkeeping],
        "drift": plan.drift,
        "blocked": plan.blocked,
        "errors": plan.errors,
        "connections": [c.as_json() for c in plan.connections],
        "summary": {
            **plan.counts(),
            "changes": len(plan.changes),
            "read_requests": plan.read_requests,
            "apply_requests": planned_requests(plan),
            "batches": len(plan.batches),
        },
    }
    return to_json(doc, sort_keys=True) + "\n"


def render_results(results: list[Result], requests: int, fmt: str) -> str:
    counts = {str(s): sum(1 for r in results if r.status is s) for s in Status}
    if fmt == "json":
        doc = {
            "results": [{**r.op.as_json(), "status": str(r.status), "message": r.message} for r in results],
            "summary": {**counts, "requests": requests},
        }
        return to_json(doc, sort_keys=True) + "\n"
    lines = []
    for r in results:
        lines.append(f"{r.status.mark} {r.op.title()}" + (f": {r.message}" if r.message else ""))
    lines.append(
        f"Apply: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped "
        f"({requests} requests in all)."
    )
    if counts["failed"] or counts["skipped"]:
        lines.append("Run apply again to finish: it plans only what is left.")
    return _text(lines)
