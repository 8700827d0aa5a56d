"""A plan's parts: Changes (one field each), Ops (one request each) and the Plan, and how
they render as text and JSON. Secrets never enter a Change: they show as set / changed /
removed. Request bodies (which hold them) are kept off repr and off every rendering."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING

from ..spec import Action, Edit, Ledger, Resource, TokenState

if TYPE_CHECKING:
    from .batch import Batch


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def secret_digest(integration_id: str, secret: object) -> str:
    """What the ledger records for an OAuth client secret that was sent (salted with the id)."""
    material = f"bifrost-gitops oauth client_secret\0{integration_id}\0".encode()
    return hashlib.sha256(material + json.dumps(secret, ensure_ascii=False).encode()).hexdigest()


def same(a: object, b: object) -> bool:
    """JSON equality (true is not 1, "5" is not 5)."""
    return digest(a) == digest(b)


def blank(v: object) -> bool:
    """Bifrost reads "" as "no value", like null."""
    return v is None or v == ""


def show(v: object) -> str:
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class Change:
    field: str
    action: Edit
    old: object = None
    new: object = None
    secret: bool = False

    def __post_init__(self) -> None:
        self.action = Edit(self.action)

    def text(self) -> str:
        head = f"{self.action.sign} {self.field}:"
        if self.action is Edit.CLEAR:
            return f"{head} {self.new}"
        if self.secret:
            return f"{head} {self.action.secret_word} (secret)"
        if self.action is Edit.ADD:
            return f"{head} {show(self.new)}"
        if self.action is Edit.CHANGE:
            return f"{head} {show(self.old)} -> {show(self.new)}"
        if self.action is Edit.REMOVE:
            return f"{head} removed (was {show(self.old)})"
        return f"{head} {self.action}"

    def as_json(self) -> dict[str, object]:
        d: dict[str, object] = {"field": self.field, "action": str(self.action), "secret": self.secret}
        if not self.secret:
            d["old"], d["new"] = self.old, self.new
        return d


@dataclass
class Op:
    action: Action
    resource: Resource
    address: str  # "HaloPSA", "HaloPSA/contoso"
    integration: str
    method: str
    path: str  # "{iid}" stands for the integration id (known once it exists)
    _: KW_ONLY
    body: object = field(default=None, repr=False)
    changes: list[Change] = field(default_factory=list)
    deps: list[int] = field(default_factory=list)  # indexes of ops that must succeed first
    destructive: bool = False
    group: str = ""  # ops of one group run in order; groups of one stage run concurrently
    stage: int = 0
    #: secret OAuth client secret sent by this op (its hash goes into the ledger); never shown
    sent_secret: object = field(default=None, repr=False)
    bookkeeping: bool = False  # the ledger: not a change the user declared
    #: a mapping create: the override keys the repository declares for that organization; any
    #: other key in the create's answer is a leftover of an earlier mapping and is nulled right
    #: after, in the same apply (docs/bifrost-api.md#mapping-overrides)
    keep_keys: frozenset[str] | None = None
    #: of those leftovers, the keys whose value may be shown (typed, and not secret)
    public_keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.action, self.resource = Action(self.action), Resource(self.resource)

    def title(self) -> str:
        if self.action is Action.REFRESH:
            what = "refresh oauth token"
        elif self.action is Action.DISCONNECT:
            what = "disconnect oauth token of"
        elif self.action is Action.RECORD:
            what = "record ownership in"
        else:
            what = f"{self.action} {self.resource}"
        return f"{self.action.sign} {what} {self.address}"

    def as_json(self) -> dict[str, object]:
        return {
            "action": str(self.action),
            "resource": str(self.resource),
            "address": self.address,
            "method": self.method,
            "path": self.path,
            "destructive": self.destructive,
            "changes": [c.as_json() for c in self.changes],
        }


@dataclass(frozen=True)
class OrgConnection:
    """The state of one organization's own OAuth connection (``oauth: own``) and what an admin
    does about it; not a change (a refresh apply makes is an Op of its own)."""

    address: str  # "Graph/contoso"
    state: TokenState
    advice: str  # "" when nothing is to be done

    def text(self) -> str:
        return f"{self.address}: {self.state}" + (f": {self.advice}" if self.advice else "")

    def as_json(self) -> dict[str, object]:
        return {"address": self.address, "state": str(self.state), "advice": self.advice}


@dataclass
class Plan:
    ops: list[Op]
    drift: list[str]
    blocked: list[str]  # why apply must refuse (a schema key removal without --allow-key-removal)
    errors: list[str]  # the plan cannot be made (unknown organization, missing client secret)
    read_requests: int = 0
    ids: dict[str, str] = field(default_factory=dict)  # integration name -> live id
    ledger: Ledger = field(default_factory=lambda: Ledger(integrations={}))  # live ledger content
    ledger_id: str | None = None
    managed_names: list[str] = field(default_factory=list)
    retiring: dict[str, str] = field(default_factory=dict)  # id -> name, retired by this apply
    #: changed client-credentials providers with a templated token URL: no refresh is planned,
    #: Bifrost fetches their tokens on each SDK get (docs/bifrost-api.md#oauth-tokens)
    fetched_per_get: list[str] = field(default_factory=list)
    #: the organizations that connect their own OAuth account, and each one's token state
    connections: list[OrgConnection] = field(default_factory=list)
    #: override-free mapping creates sent through the batch endpoint (:mod:`.batch`)
    batches: list[Batch] = field(default_factory=list)

    @property
    def changes(self) -> list[Op]:
        return [o for o in self.ops if not o.bookkeeping]

    def counts(self) -> dict[str, int]:
        c = {"create": 0, "update": 0, "delete": 0, "refresh": 0}
        for o in self.changes:
            c[o.action] = c.get(o.action, 0) + 1
        return c

    def add(
        self,
        action: Action,
        resource: Resource,
        address: str,
        path: str,
        *,
        integration: str | None = None,
        body: object = None,
        changes: Iterable[Change] = (),
        deps: Iterable[int] = (),
        group: str | None = None,
        stage: int = 0,
        destructive: bool = False,
        sent_secret: object = None,
        bookkeeping: bool = False,
        keep_keys: frozenset[str] | None = None,
        public_keys: frozenset[str] = frozenset(),
    ) -> int:
        """Append an Op (its method from ACTION, its integration and group ADDRESS unless
        given); its index, for the ops that must wait for it."""
        name = address if integration is None else integration
        op = Op(
            action,
            resource,
            address,
            name,
            action.method,
            path,
            body=body,
            changes=list(changes),
            deps=list(deps),
            destructive=destructive,
            group=address if group is None else group,
            stage=stage,
            sent_secret=sent_secret,
            bookkeeping=bookkeeping,
            keep_keys=keep_keys,
            public_keys=public_keys,
        )
        self.ops.append(op)
        return len(self.ops) - 1


@dataclass
class Options:
    prune: bool = False
    allow_key_removal: bool = False
    rotate_oauth_secrets: bool = False
    disconnect_org_tokens: bool = False
