"""The compiled bundle's format: file names, markers, and reading ``index.json``. Stdlib only.

Everything that writes or reads a bundle (compile, the runtime SDK, plan/apply, publish) takes
these names and rules from here, so the format has one definition. Layout (format 1)::

  DIR/index.json        kind, format, secrets mode, source commit, one entry per file
                        ({"file": <path inside DIR>, "sha256": ...}): "global", "orgs", "deploy";
                        an org's entry also has "id"; "inputs" and a clear deploy entry's
                        "integrations" (orginputs.py) let compile keep what did not change
                        (a file, an integration's entry in deploy.json); readers ignore them
  DIR/global.json       the defaults-only view (scope "global")
  DIR/orgs/<org>.json   what that organization's workflows get
  DIR/deploy.json       the deploy manifest (integrations as Bifrost stores them)

Kept free of pydantic, the checks and sops: a runtime or a ``plan`` reading a bundle loads none.
"""

from __future__ import annotations

import enum
import json
import os
from typing import Final, NotRequired, TypedDict, cast

from .errors import BifrostGitopsError
from .nodes import Json

FORMAT: Final = 1
KIND: Final = "bifrost-gitops/bundle"
MODES: Final = ("seal", "plain", "redact")

INDEX_FILE: Final = "index.json"
GLOBAL_FILE: Final = "global.json"
ORGS_DIR: Final = "orgs"
DEPLOY_FILE: Final = "deploy.json"

#: The scope name, and index.json's key, of the defaults-only view (never an organization's).
GLOBAL_SCOPE: Final = "global"
#: index.json's keys of the organizations' entries (by name) and of the deploy manifest's entry.
ORGS_KEY: Final = "orgs"
DEPLOY_KEY: Final = "deploy"
#: An org file's (and global.json's) table of client-credentials integrations: what the runtime
#: needs to mint their tokens as Bifrost's ``get`` does (token URL template, audience).
CLIENT_CREDENTIALS_KEY: Final = "client_credentials"
#: An org file's list of the integrations whose token that organization takes from its own
#: connection (a mapping with ``oauth: own``), never from the integration's.
OWN_CONNECTION_KEY: Final = "own_connection"

DEPLOY_FORMAT: Final = 1
DEPLOY_KIND: Final = "bifrost-gitops/deploy"

#: What ``compile --secrets redact`` (and a redacted deploy manifest) writes for a secret value.
REDACTED: Final = "<redacted>"
#: What a secret value shows as in a repr, a log or a report.
MASK: Final = "<secret>"


def org_file(org: str) -> str:
    """The bundle path of ORG's file."""
    return f"{ORGS_DIR}/{org}.json"


def safe_entry(rel: object) -> str | None:
    """REL (an index entry's ``file``) normalised, or None when it could name something outside
    the bundle folder: absolute, a ``..`` part, a backslash (a separator elsewhere), a NUL."""
    if not isinstance(rel, str) or "\x00" in rel or "\\" in rel or os.path.isabs(rel):
        return None
    norm = os.path.normpath(rel)
    if ".." in rel.split("/") or norm.startswith(".."):
        return None
    return norm


class IndexEntry(TypedDict):
    """One file's entry in index.json, as compile writes it (readers still check what they use)."""

    file: str
    sha256: str
    fingerprint: NotRequired[str]  # sealed files: an HMAC of the clear content
    id: NotRequired[str | None]  # organizations' entries: the Bifrost UUID
    inputs: NotRequired[str]  # what the file was made from (orginputs.py): orgs, global, sealed deploy
    #: a clear deploy.json's entry: name -> {start, end, inputs} of each integration's entry in it
    integrations: NotRequired[dict[str, dict[str, int | str]]]


class SourceInfo(TypedDict):
    """The git commit a bundle was compiled from, and whether the work tree differed."""

    commit: str | None
    dirty: bool


#: index.json after :func:`read_index` checked its kind, format, mode and global/orgs entries
#: ("global" is a keyword, hence the functional form)
BundleIndex = TypedDict(
    "BundleIndex",
    {
        "deploy": NotRequired[IndexEntry],
        "format": int,
        "kind": str,
        "secrets": str,
        "source": SourceInfo,
        "recipients": list[str],
        "global": IndexEntry,
        "orgs": dict[str, IndexEntry],
    },
)


def listed_entries(index: dict[str, Json]) -> list[IndexEntry]:
    """Every {file, sha256} entry of INDEX, wherever it sits (global, orgs, deploy, ...)."""
    out: list[IndexEntry] = []

    def walk(node: Json) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str) and isinstance(node.get("sha256"), str):
                out.append(cast(IndexEntry, node))
                return
            for v in node.values():
                walk(v)

    walk({k: v for k, v in index.items() if k not in ("source", "recipients")})
    return out


# --- reading index.json -----------------------------------------------------------------------


class Problem(enum.Enum):
    """Why index.json was refused (each reader words it for its own users)."""

    MISSING = "missing"
    UNREADABLE = "unreadable"
    NOT_JSON = "not JSON"
    NOT_BUNDLE = "not a bundle index"
    FORMAT = "unsupported format"
    MODE = "unknown secrets mode"
    MALFORMED = "malformed"


class BadIndex(BifrostGitopsError):
    """index.json cannot be used; ``str()`` is the runtime's wording (never holds a secret)."""

    def __init__(
        self,
        path: str,
        folder: str,
        problem: Problem,
        index: dict[str, Json] | None = None,
        cause: OSError | None = None,
    ):
        self.path, self.folder, self.problem, self.cause = path, folder, problem, cause
        super().__init__(f"{path}: {_say(problem, folder, index, cause)}")


def _say(problem: Problem, folder: str, index: dict[str, Json] | None, cause: OSError | None) -> str:
    if problem is Problem.MISSING:
        return f"not found (is {folder} a bundle written by `bifrost-gitops compile`?)"
    if problem is Problem.UNREADABLE:
        return f"cannot read it ({(cause and cause.strerror) or type(cause).__name__})"
    if problem is Problem.NOT_JSON:
        return "not valid JSON"
    if problem is Problem.NOT_BUNDLE:
        return "not a bifrost-gitops bundle index"
    if problem is Problem.FORMAT:
        return f"bundle format {(index or {}).get('format')!r} is not supported (this runtime reads {FORMAT})"
    if problem is Problem.MODE:
        return f"unknown secrets mode {(index or {}).get('secrets')!r}"
    return "malformed (no orgs or global entry)"


def load_index(folder: str) -> dict[str, Json]:
    """FOLDER/index.json, a bundle's (its ``kind``), not yet checked further; raises BadIndex."""
    path = os.path.join(folder, INDEX_FILE)
    try:
        with open(path, "rb") as f:
            index = json.loads(f.read())
    except FileNotFoundError as e:
        raise BadIndex(path, folder, Problem.MISSING, cause=e) from None
    except OSError as e:
        raise BadIndex(path, folder, Problem.UNREADABLE, cause=e) from None
    except ValueError:
        raise BadIndex(path, folder, Problem.NOT_JSON) from None
    if not isinstance(index, dict) or index.get("kind") != KIND:
        raise BadIndex(path, folder, Problem.NOT_BUNDLE)
    return cast(dict[str, Json], index)


def read_index(folder: str) -> BundleIndex:
    """FOLDER/index.json, checked: a bundle's, this format, a known mode, global and orgs entries."""
    index = load_index(folder)
    path = os.path.join(folder, INDEX_FILE)
    if index.get("format") != FORMAT:
        raise BadIndex(path, folder, Problem.FORMAT, index)
    if index.get("secrets") not in MODES:
        raise BadIndex(path, folder, Problem.MODE, index)
    if not isinstance(index.get(ORGS_KEY), dict) or not isinstance(index.get(GLOBAL_SCOPE), dict):
        raise BadIndex(path, folder, Problem.MALFORMED, index)
    return cast(BundleIndex, index)


def peek_index(folder: str) -> dict[str, Json]:
    """FOLDER/index.json when it is a JSON object, else {} (for a best-effort look: no errors)."""
    try:
        with open(os.path.join(folder, INDEX_FILE), encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def secrets_mode(folder: str) -> str | None:
    """The secrets mode index.json records, when it can be read."""
    mode = peek_index(folder).get("secrets")
    return mode if isinstance(mode, str) else None
