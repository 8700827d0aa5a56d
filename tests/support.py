"""Shared helpers: build repositories from a dict of YAML texts and run the CLI.

``make_repo(files)`` writes a minimal valid repository (Project, Organizations, one
Integration and one Mapping) into a fresh temp folder, then applies ``files`` on top:
``{relative path: YAML text}`` adds or replaces a file, ``{path: None}`` removes a base file.
``base=False`` starts from an empty folder.

``cli(*args, cwd=..., env=..., subprocess=False)`` runs ``bifrost-gitops`` either in-process
(click's CliRunner) or as a real ``python -m bifrost_gitops`` child, returning
``Run(code, stdout, stderr)``.
"""

from __future__ import annotations

import json
import os
import subprocess as sp
import sys
import textwrap
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = "apiVersion: bifrost-gitops/v1\n"

BASE_FILES: dict[str, str] = {
    "bifrost-gitops.yaml": API + "kind: Project\n",
    "organizations.yaml": API
    + textwrap.dedent(
        """\
        kind: Organizations
        organizations:
          - name: contoso
            display_name: Contoso Ltd
          - name: fabrikam
        """
    ),
    "integrations/HaloPSA/integration.yaml": API
    + textwrap.dedent(
        """\
        kind: Integration
        name: HaloPSA
        entity_id_name: Client ID
        config_schema:
          - {key: url, type: string, required: true}
          - {key: page_size, type: int}
          - {key: beta, type: bool}
          - {key: extra, type: json}
          - {key: region, type: string, options: [us, eu, uk]}
          - {key: api_key, type: secret}
        defaults:
          config:
            url: https://halo.example.com
            page_size: 100
        """
    ),
    "integrations/HaloPSA/mappings/contoso.yaml": API
    + textwrap.dedent(
        """\
        kind: Mapping
        integration: HaloPSA
        organization: contoso
        entity_id: "12"
        config:
          page_size: 50
          region: eu
        """
    ),
}

#: A sops metadata block that makes a file count as sops-encrypted (no decryption needed).
FAKE_SOPS = textwrap.dedent(
    """\
    sops:
      age:
        - recipient: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            bm90IGEgcmVhbCBrZXk=
            -----END AGE ENCRYPTED FILE-----
      lastmodified: "2024-01-01T00:00:00Z"
      mac: ENC[AES256_GCM,data:bWFj,iv:aXY=,tag:dGFn,type:str]
      encrypted_regex: ^secrets$
      mac_only_encrypted: true
      version: 3.11.0
    """
)

#: A well-formed sops ciphertext value.
ENC = "ENC[AES256_GCM,data:c2VjcmV0,iv:aXZpdml2aXZpdml2,tag:dGFndGFndGFn,type:str]"


#: git with a fixed identity and none of the developer's settings (signing, hooks, templates).
GIT_ENV = {
    "GIT_AUTHOR_NAME": "CI",
    "GIT_AUTHOR_EMAIL": "ci@example.com",
    "GIT_COMMITTER_NAME": "CI",
    "GIT_COMMITTER_EMAIL": "ci@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str) -> str:
    """Run git in CWD; its stdout (the test fails on a non-zero exit)."""
    proc = sp.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def write_repo(root: Path, files: Mapping[str, str | None] | None = None, base: bool = True) -> Path:
    merged: dict[str, str | None] = dict(BASE_FILES) if base else {}
    merged.update(files or {})
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in merged.items():
        if text is None:
            continue
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


#: What a developer's shell may hold that would let a test reach real keys or a real server, or change
#: the output: sops key sources, Bifrost credentials and settings, GitHub runner variables, colour.
#: (BIFROST_FUZZ_EXAMPLES is read when the fuzz modules are imported, before any test runs.)
LEAKY_PREFIXES = ("SOPS_", "BIFROST_", "GITHUB_")
LEAKY_NAMES = ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE")


def isolate(mp: pytest.MonkeyPatch, home: Path) -> Path:
    """Clear the developer's keys, credentials and colour settings from the environment; HOME (and so
    ~/.ssh, the sops keys file under XDG_CONFIG_HOME and the parse cache under XDG_CACHE_HOME)
    becomes the empty folder HOME."""
    (home / ".config").mkdir(parents=True, exist_ok=True)
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES) or name in LEAKY_NAMES:
            mp.delenv(name)
    mp.setenv("HOME", str(home))
    mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    return home


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _clean_env(extra: Mapping[str, str | None] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SOPS_"))}
    for name in LEAKY_NAMES:
        env.pop(name, None)
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run_cli(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str | None] | None = None,
    subprocess: bool = False,
    timeout: float = 30,
) -> Run:
    """Run ``bifrost-gitops ARGS``; returns exit code, stdout and stderr separately."""
    if subprocess:
        proc = sp.run(
            [sys.executable, "-m", "bifrost_gitops", *args],
            cwd=cwd,
            env=_clean_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=sp.DEVNULL,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    from click.testing import CliRunner

    from bifrost_gitops.cli import main

    runner = CliRunner()
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        env_overrides: dict[str, Any] = dict.fromkeys(LEAKY_NAMES)
        env_overrides.update(env or {})
        result = runner.invoke(main, list(args), env=env_overrides, catch_exceptions=True)
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"CLI raised instead of reporting:\n{tb}")
    return Run(result.exit_code, result.stdout, result.stderr)


def load(root: Path) -> Any:
    from bifrost_gitops import repo

    return repo.load(str(root))


def codes(result: Any) -> list[str]:
    return [d.code for d in result.diagnostics]


def only(result: Any, code: str) -> Any:
    """The single diagnostic with ``code`` (fails listing everything otherwise)."""
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, f"expected exactly one {code}, got: {result.diagnostics}"
    return found[0]


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the ``occurrence``-th line containing ``needle``."""
    n = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            n += 1
            if n == occurrence:
                return i
    raise AssertionError(f"{needle!r} not in text")


# --- loopback HTTP servers --------------------------------------------------------------------


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler: no access log, JSON replies, a stuck client cannot hold it."""

    timeout = 5

    def send_json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class LoopbackServer:
    """HANDLER served on 127.0.0.1 (a free port) from a daemon thread; a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
