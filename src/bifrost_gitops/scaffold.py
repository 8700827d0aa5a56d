"""`bifrost-gitops init`: a new repository that validates with --strict out of the box.

A first run that passes matters more than a complete example: users learn the format by
changing a working repository, and a scaffold that fails its own validator teaches them
nothing. So everything written here is small, valid, and commented where a choice is made.
The JSON schemas are copied into `.schemas/` (a dot-folder, so the validator skips it) and
every document points at them, so editors complete and check fields with no network access.
"""

from __future__ import annotations

import importlib
import json
import os
import re

from .atomic import new_file_mode, write_atomic
from .errors import BifrostGitopsError
from .model import KINDS
from .schemas import comment, dump, filename, link

PLACEHOLDER = "age1REPLACE-WITH-YOUR-AGE-PUBLIC-KEY"
_RECIPIENT_RE = re.compile(r"^age1[0-9a-z]{20,}$")
_PUBLIC_KEY_RE = re.compile(r"^#\s*public key:\s*(age1[0-9a-z]+)\s*$", re.MULTILINE)
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_IDENTITY_RE = re.compile(r"^AGE-SECRET-KEY-1[0-9A-Z]+$", re.MULTILINE)


class InitError(BifrostGitopsError):
    """The repository cannot be scaffolded here (the CLI turns it into exit 2)."""


# --- where sops finds the user's age key ----------------------------------------------------


def _default_keys_file() -> str:
    """sops' default age keys file: XDG config dir, else ~/.config (macOS: Application Support)."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "sops", "age", "keys.txt")
    home = os.path.expanduser("~")
    mac = os.path.join(home, "Library", "Application Support", "sops", "age", "keys.txt")
    if os.path.isfile(mac):
        return mac
    return os.path.join(home, ".config", "sops", "age", "keys.txt")


def _recipient_of(text: str) -> str | None:
    """The public key of the first identity in a keys.txt text, without ever showing the key.

    age-keygen writes a `# public key:` comment, which needs no crypto library; a bare secret
    key (typical for SOPS_AGE_KEY) is converted with pyrage when it is installed.
    """
    found = _PUBLIC_KEY_RE.search(text)
    if found:
        return found.group(1)
    identity = _IDENTITY_RE.search(text)
    if identity is None:
        return None
    try:
        pyrage = importlib.import_module("pyrage")
        return str(pyrage.x25519.Identity.from_str(identity.group(0)).to_public())
    except Exception:  # not installed, or not a key it understands: the placeholder is the answer
        return None


def find_recipient() -> str | None:
    """The age recipient of the user's own key, looked up in the order sops uses."""
    candidates: list[str] = []
    key_file = os.environ.get("SOPS_AGE_KEY_FILE")
    if key_file:
        candidates.append(_read(key_file))
    candidates.append(os.environ.get("SOPS_AGE_KEY", ""))
    candidates.append(_read(_default_keys_file()))
    for text in candidates:
        recipient = _recipient_of(text) if text else None
        if recipient:
            return recipient
    return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        return ""


# --- templates ------------------------------------------------------------------------------


PROJECT = """\
# Marks the repository root: documents are found anywhere below this folder.
apiVersion: bifrost-gitops/v1
kind: Project
# Sealed bundles (bifrost-gitops compile) are encrypted to the runtime's age recipients:
# bundle:
#   recipients: [age1...]
"""

#: the head of an organizations file: `init` follows it with two organizations, `new org`
#: (newdoc) with the one it declares when the repository has no organizations file yet
ORGANIZATIONS_HEAD = """\
# Every client organization. `name` is the slug mappings refer to; `id` is the organization's
# UUID in Bifrost (optional until you deploy).
apiVersion: bifrost-gitops/v1
kind: Organizations
organizations:
"""

ORGANIZATIONS = (
    ORGANIZATIONS_HEAD
    + """\
  - name: contoso
    display_name: Contoso Ltd
  - name: fabrikam
    display_name: Fabrikam, Inc.
"""
)

INTEGRATION = """\
# One integration: its typed config schema and the defaults every organization starts from.
apiVersion: bifrost-gitops/v1
kind: Integration
name: Example
description: An API reached with a per-organization customer id
entity_id_name: Customer ID
config_schema:
  - key: base_url
    type: string
    required: true
    description: API base URL
  - key: page_size
    type: int
  - key: verify_ssl
    type: bool
  - key: region
    type: string
    options: [us, eu]
  - key: field_map
    type: json
    description: Remote field names by local name
  - key: api_key
    type: secret
    description: Set it under secrets:, then encrypt the file with sops
defaults:
  config:
    base_url: https://api.example.com/v1
    page_size: 100
    verify_ssl: true
    region: eu
"""

MAPPING = """\
# Contoso's mapping: its id in the external system plus its overrides of the defaults.
# Organizations without a mapping (fabrikam) get the defaults only.
apiVersion: bifrost-gitops/v1
kind: Mapping
integration: Example
organization: contoso
entity_id: "1001"
entity_name: Contoso Ltd
config:
  page_size: 50
  field_map:
    ticket: case
"""

SOPS_CONFIG = """\
# sops encrypts only the values under a `secrets:` key, so reviews show config in clear.
# The MAC covers only those values: editing plain config needs no key.
{todo}stores:
  yaml:
    indent: 2  # sops rewrites the whole file; keep the 2-space style of the rest
creation_rules:
  - path_regex: \\.ya?ml$
    encrypted_regex: ^secrets$
    mac_only_encrypted: true
    # Comma-separated: add every teammate's and CI's age recipient, then `bifrost-gitops secrets updatekeys`.
    age: {recipient}
"""

NO_KEY_TODO = """\
#
# TODO: no age key was found, so the recipient below is a placeholder and sops cannot encrypt
# yet. Make a key (kept out of git, where sops finds it) and paste the recipient it prints here:
#   bifrost-gitops secrets keygen        (or: age-keygen -o ~/.config/sops/age/keys.txt)
"""

#: This project's hook, pinned to the commit bifrost-gitops was installed from (which exists).
PRE_COMMIT_PINNED = """\
# pip install pre-commit && pre-commit install: validates what each commit will contain.
# rev: the commit bifrost-gitops was installed from; move it with `pre-commit autoupdate --freeze`.
repos:
  - repo: {repo}
    rev: {rev}
    hooks:
      - id: bifrost-gitops-validate
        args: [--strict]  # the one place the team decides: warnings block a commit (remove to allow)
"""

#: Without a known commit: the bifrost-gitops already installed runs (see README.md for pinning).
PRE_COMMIT_LOCAL = """\
# pip install pre-commit && pre-commit install: validates what each commit will contain.
# This runs the bifrost-gitops installed on each machine. To pin this project's hook to a commit
# instead: repo: https://github.com/bifrost-gitops/bifrost-gitops, rev: <a sha from
# `git ls-remote` of it>, id: bifrost-gitops-validate; later `pre-commit autoupdate --freeze`.
repos:
  - repo: local
    hooks:
      - id: bifrost-gitops-validate
        name: bifrost-gitops validate
        entry: bifrost-gitops validate --staged
        language: system
        pass_filenames: false
        always_run: true
        require_serial: true
        args: [--strict]  # the one place the team decides: warnings block a commit (remove to allow)
"""

GITIGNORE = """\
# Private age keys never belong in git.
keys.txt
*.agekey
# Compiled bundles are build output (plain ones hold secrets in clear).
/bundle/
/build/
# Decrypted copies (`sops decrypt x.yaml > x.dec.yaml`): clear secrets; validate skips them.
*.dec.yaml
*.dec.yml
*.decrypted.yaml
*.decrypted.yml
*.plain.yaml
*.plain.yml
*.cleartext.yaml
*.cleartext.yml
"""

README = """\
# Bifrost integrations

Organizations, integrations and their per-organization mappings for Bifrost, as code.
Secrets are encrypted in place with [sops](https://github.com/getsops/sops) and age.

## Validate

```sh
bifrost-gitops validate --strict
pre-commit install    # then every commit is checked: `validate --staged`, what the commit holds
```

The hook's `args: [--strict]` in `.pre-commit-config.yaml` is where this team decides that
warnings block a commit; remove it to let them pass.

## Add an organization, an integration, a mapping

```sh
bifrost-gitops new org acme --display-name "Acme, Inc."    # appended to organizations.yaml
bifrost-gitops new integration Autotask                     # integrations/Autotask/
bifrost-gitops new mapping Example acme --entity-id 1002    # integrations/Example/mappings/acme.yaml
```

`name` is a lower-case slug. Organizations without a mapping get the integration's defaults.

## Add a secret

Secret-typed keys go under `secrets:` (never `config:`), then the file is encrypted:

```sh
# in integrations/Example/mappings/contoso.yaml
#   secrets:
#     api_key: the-real-key
sops encrypt --in-place integrations/Example/mappings/contoso.yaml
sops edit integrations/Example/mappings/contoso.yaml    # later changes
```

`.sops.yaml` names who can decrypt (age recipients); the validator refuses clear text under
`secrets:`. `.schemas/` holds the JSON schemas your editor uses for completion.
"""

# (repository-relative path, kind whose schema the file declares, text)
_DOCUMENTS: list[tuple[str, str, str]] = [
    ("bifrost-gitops.yaml", "Project", PROJECT),
    ("organizations.yaml", "Organizations", ORGANIZATIONS),
    ("integrations/Example/integration.yaml", "Integration", INTEGRATION),
    ("integrations/Example/mappings/contoso.yaml", "Mapping", MAPPING),
]


def _files(recipient: str | None) -> list[tuple[str, str]]:
    """Every file to write, as (repository-relative path, text)."""
    files: list[tuple[str, str]] = []
    for rel, kind, text in _DOCUMENTS:
        files.append((rel, comment(link(f".schemas/{filename(kind)}", rel)) + text))
    sops = SOPS_CONFIG.format(todo="" if recipient else NO_KEY_TODO, recipient=recipient or PLACEHOLDER)
    files += [
        (".sops.yaml", sops),
        (".pre-commit-config.yaml", pre_commit_config()),
        (".gitignore", GITIGNORE),
        ("README.md", README),
    ]
    files += [(f".schemas/{filename(kind)}", dump(kind)) for kind in KINDS]
    return files


def installed_from() -> tuple[str, str] | None:
    """(repository URL, commit) when bifrost-gitops was installed from git (pip records it in
    direct_url.json, PEP 610): a revision that certainly exists, for the hook's `rev:`."""
    from importlib import metadata

    try:
        text = metadata.distribution("bifrost-gitops").read_text("direct_url.json")
        info = json.loads(text or "null")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("vcs_info"), dict):
        return None  # a wheel, an sdist, an editable checkout: no commit on record
    url, vcs = info.get("url"), info["vcs_info"]
    commit = vcs.get("commit_id")
    if vcs.get("vcs") != "git" or not isinstance(url, str) or not isinstance(commit, str):
        return None
    return (url, commit) if _COMMIT_RE.match(commit) and _shareable(url) else None


def _shareable(url: str) -> bool:
    """A URL every teammate's pre-commit can clone, fit for a committed file: https or ssh, no
    password in it (pip strips one, other installers may not), no local path (git+file://)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return url.isprintable() and parts.scheme in ("https", "ssh") and parts.password is None
    except ValueError:
        return False


def pre_commit_config() -> str:
    """The hook pinned to the commit we were installed from, else the installed command."""
    source = installed_from()
    if source is None:
        return PRE_COMMIT_LOCAL
    url, commit = source
    return PRE_COMMIT_PINNED.format(repo=json.dumps(url), rev=commit)  # a JSON string is YAML


# --- writing --------------------------------------------------------------------------------


def _check_target(directory: str, force: bool) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise InitError(f"{directory}: exists and is not a folder")
    if os.path.isdir(directory) and not force:
        try:
            entries = [e for e in os.listdir(directory) if e != ".git"]  # `git init` first is fine
        except OSError as e:
            raise InitError(f"{directory}: cannot list folder: {e.strerror}") from None
        if entries:
            raise InitError(
                f"{directory}: folder is not empty (use --force to add the files; existing ones are kept)"
            )


def _write(path: str, text: str) -> None:
    """Write via a temp file and rename, so an interrupted init leaves no half-written file."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    write_atomic(path, text.encode("utf-8"), mode=new_file_mode(0o666), prefix=".init-", suffix=".tmp")


def scaffold(directory: str, force: bool = False, age_recipient: str | None = None) -> list[str]:
    """Write a new repository into ``directory``; returns the paths written.

    With ``force`` the folder may hold files already; those are kept, never overwritten, so
    running init in an existing checkout cannot destroy work. The age recipient is the given
    one, else the user's own key's (where sops looks), else a marked placeholder.
    """
    if age_recipient is not None:
        age_recipient = age_recipient.strip()
        bad = [r for r in age_recipient.split(",") if not _RECIPIENT_RE.match(r.strip())]
        if bad or not age_recipient:
            if "SECRET-KEY" in age_recipient.upper():  # never echo a private key
                raise InitError("--age: that is a secret key; pass its public recipient (age1...) instead")
            raise InitError(f"--age: {age_recipient!r} is not an age recipient (age1...)")
    recipient = age_recipient or find_recipient()
    _check_target(directory, force)
    written: list[str] = []
    for rel, text in _files(recipient):
        path = os.path.join(directory, *rel.split("/"))
        if os.path.exists(path):
            continue
        try:
            _write(path, text)
        except OSError as e:
            raise InitError(f"{path}: cannot write: {e.strerror or e}") from None
        written.append(path)
    return written
