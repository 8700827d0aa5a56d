"""A saved plan (``plan -o FILE``) and the check ``apply FILE`` makes before it writes anything.

The file never holds a request body (bodies carry secret values). It holds what was reviewed:
the operations as ``plan --format json`` shows them (secrets as set / changed / removed), the
plan options, and two salted sha256 fingerprints: of the desired manifest (the bundle or
repository, secrets included) and of the live state the plan read. ``apply FILE`` re-plans from
the same source, re-derives the bodies there, and refuses (exit 2) unless both fingerprints and
the operations are the same. A per-file random salt keeps a fingerprint from being compared with
another file's or with the ledger's. A checksum over the content catches a hand edit; a forged
file still cannot make apply send anything the fresh plan would not.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import __version__
from ..atomic import write_atomic
from ..escape import term
from . import DeployError
from .plan import Options, Plan

if TYPE_CHECKING:
    from .live import Live
    from .spec import Manifest

FORMAT = 1
KIND = "bifrost-gitops/plan"


class StalePlan(DeployError):
    """The saved plan cannot be applied as it is (exit 2); the message says why."""


@dataclass(frozen=True)
class Saved:
    """What a saved plan records (no secret value, no request body)."""

    source: str
    options: Options
    salt: str
    desired_sha256: str
    live_sha256: str
    ops: list[dict[str, object]]


#: PBKDF2 rounds of a fingerprint: the desired manifest holds the secrets, and the file its salt,
#: so a guess at a weak secret must cost more than one sha256 (the cost is flat in the size)
ROUNDS = 100_000


def fingerprint(salt: str, value: object) -> str:
    data = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.pbkdf2_hmac("sha256", data, bytes.fromhex(salt), ROUNDS).hex()


def live_fingerprint(salt: str, live: Live) -> str:
    return fingerprint(
        salt,
        {
            "orgs": live.orgs,
            "integrations": {k: v.model_dump(mode="json") for k, v in live.integrations.items()},
            "details": {k: v.model_dump(mode="json") for k, v in live.details.items()},
            "connections": {k: v.model_dump(mode="json") for k, v in live.connections.items()},
            "ledger_id": live.ledger_id,
            "ledger": live.ledger,
        },
    )


def ops_of(plan: Plan) -> list[dict[str, object]]:
    """The operations as reviewed: what ``plan --format json`` shows, never a body."""
    ops: list[dict[str, object]] = json.loads(json.dumps([o.as_json() for o in plan.ops], default=str))
    return ops


def record(source: str, opts: Options, desired: Manifest, live: Live, plan: Plan) -> Saved:
    salt = secrets.token_hex(16)
    return Saved(
        source,  # as given: `apply FILE` in another checkout of the same layout finds it too
        opts,
        salt,
        fingerprint(salt, desired),
        live_fingerprint(salt, live),
        ops_of(plan),
    )


def _content(s: Saved) -> dict[str, object]:
    return {
        "format": FORMAT,
        "kind": KIND,
        "tool_version": __version__,
        "source": s.source,
        "options": dataclasses.asdict(s.options),
        "salt": s.salt,
        "desired_sha256": s.desired_sha256,
        "live_sha256": s.live_sha256,
        "ops": s.ops,
    }


def _checksum(content: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def write(path: str, s: Saved) -> None:
    """PATH, 0600, replaced whole."""
    content = _content(s)
    doc = {**content, "sha256": _checksum(content)}
    data = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode()
    try:
        write_atomic(path, data, mode=0o600, prefix=".plan-", suffix=".tmp")
    except OSError as e:
        raise DeployError(f"{term(path)}: cannot write the plan: {term(e.strerror or str(e))}") from None


def is_saved_plan(path: str) -> bool:
    """A plain file (a bundle and a repository are folders)."""
    return os.path.isfile(path)


def read(path: str) -> Saved:
    """The saved plan at PATH, refused when it is not one, from another version, or edited."""
    where = term(path)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except OSError as e:
        raise DeployError(f"{where}: cannot read the plan: {term(e.strerror or str(e))}") from None
    except ValueError:
        raise StalePlan(f"{where}: not a saved plan (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise StalePlan(f"{where}: not a saved plan (made by `bifrost-gitops plan -o`)")
    if doc.get("format") != FORMAT or doc.get("tool_version") != __version__:
        made = term(str(doc.get("tool_version")))
        raise StalePlan(
            f"{where}: made by bifrost-gitops {made} (plan format {term(str(doc.get('format')))}); "
            f"this is {__version__} (format {FORMAT}): plan again"
        )
    content = {k: v for k, v in doc.items() if k != "sha256"}
    if doc.get("sha256") != _checksum(content):
        raise StalePlan(f"{where}: the saved plan was edited after it was written: plan again")
    try:
        opts = doc["options"]
        return Saved(
            str(doc["source"]),
            Options(**{f.name: bool(opts.get(f.name, False)) for f in dataclasses.fields(Options)}),
            str(doc["salt"]),
            str(doc["desired_sha256"]),
            str(doc["live_sha256"]),
            list(doc["ops"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StalePlan(f"{where}: not a saved plan (fields missing)") from None


def check(path: str, saved: Saved, desired: Manifest, live: Live, plan: Plan) -> None:
    """Refuse unless the fresh plan is the one that was saved, from the same inputs."""
    where = term(path)
    if fingerprint(saved.salt, desired) != saved.desired_sha256:
        raise StalePlan(
            f"{where}: the bundle or repository changed since this plan was made: plan again and review"
        )
    if live_fingerprint(saved.salt, live) != saved.live_sha256:
        raise StalePlan(f"{where}: the live Bifrost changed since this plan was made: plan again and review")
    if ops_of(plan) != saved.ops:
        raise StalePlan(f"{where}: the operations differ from the saved plan: plan again and review")
