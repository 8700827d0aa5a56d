"""The command line: parse arguments, call the library, print, choose the exit code.

Heavy imports (pydantic, the checks) happen inside the commands so that start-up stays fast.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def fail(message: str) -> NoReturn:
    """A usage or environment error: one line on stderr, exit 2."""
    click.echo(f"bifrost-gitops: {message}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bifrost-gitops")
def main() -> None:
    """Bifrost integrations as code: validate, compile and review a GitOps repository."""


def _report(diags: list[Any], files: int, fmt: str, root: str) -> None:
    import os

    from . import diagnostics as d

    out = sys.stdout
    if fmt == "json":
        d.report_json(diags, files, out)
    elif fmt == "github":
        prefix = os.path.relpath(root)
        prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
        d.report_github(diags, files, out, prefix)
    else:
        d.report_text(diags, files, out, d.use_colour(out))


def _load(repo: str) -> Any:
    from .repo import RepoError, load

    try:
        return load(repo)
    except RepoError as e:
        fail(str(e))


def _open_all(result: Any) -> list[Any]:
    """Decrypt every encrypted file (MAC verified); a missing key is an environment error."""
    from . import secretops, sops

    try:
        return secretops.check_files(result)
    except sops.NoKeyError as e:
        fail(f"{e} (hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)")


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="Output format; github prints Actions annotations.",
)


@main.command()
@click.argument("repo", default=".", type=click.Path(file_okay=True, dir_okay=True))
@_FORMAT
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option(
    "--decrypt", is_flag=True, help="Also open every encrypted file and verify its MAC (needs keys)."
)
def validate(repo: str, fmt: str, strict: bool, decrypt: bool) -> None:
    """Check the repository at REPO (default: here) and report every finding at once.

    Exit 0 when clean (warnings allowed unless --strict), 1 on findings, 2 on usage errors.
    No decryption key is needed unless --decrypt is given.
    """
    from .diagnostics import sort_key

    result = _load(repo)
    diags = list(result.diagnostics)
    if decrypt:
        diags = sorted(diags + _open_all(result), key=sort_key)
    _report(diags, result.files, fmt, result.root)
    failing = diags if strict else [x for x in diags if x.severity == "error"]
    sys.exit(EXIT_FINDINGS if failing else EXIT_OK)


@main.command()
@click.argument("kind", required=False)
@click.option(
    "--output-dir",
    "-o",
    type=click.Path(file_okay=False),
    help="Write every kind's <kind>.schema.json into this folder instead.",
)
def schema(kind: str | None, output_dir: str | None) -> None:
    """Print the JSON Schema of KIND (Project, Organizations, OAuthProvider, Integration, Mapping, Bundle)."""
    from .schemas import ALL_KINDS as KINDS
    from .schemas import dump, write_all

    if output_dir:
        for path in write_all(output_dir):
            click.echo(path)
        return
    if kind is None:
        fail(f"name a kind: {', '.join(KINDS)} (or use -o DIR for all)")
    match = {k.lower(): k for k in KINDS}.get(kind.lower())
    if match is None:
        fail(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    click.echo(dump(match), nl=False)


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--force", is_flag=True, help="Write into a folder that is not empty (existing files are kept)."
)
@click.option(
    "--age",
    "age_recipient",
    metavar="RECIPIENT",
    help="Age recipient for .sops.yaml (default: your own key, found where sops looks).",
)
def init(directory: str, force: bool, age_recipient: str | None) -> None:
    """Scaffold a new repository in DIRECTORY that validates out of the box."""
    from .scaffold import InitError, scaffold

    try:
        written = scaffold(directory, force=force, age_recipient=age_recipient)
    except InitError as e:
        fail(str(e))
    for path in written:
        click.echo(f"created {path}")
    click.echo(f"next: cd {directory} && bifrost-gitops validate")


@main.command("compile")
@click.argument("repo", default=".", type=click.Path())
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="The bundle folder (replaced atomically).",
)
@click.option(
    "--secrets",
    "mode",
    type=click.Choice(["seal", "plain", "redact"]),
    default="seal",
    show_default=True,
    help="seal: SOPS-encrypt each org file to the runtime's recipients; plain: clear values "
    "(mode 0600); redact: secret values replaced, no keys needed.",
)
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="Runtime age recipient for sealing (repeatable; default: bundle.recipients).",
)
@_FORMAT
def compile_cmd(repo: str, out_dir: str, mode: str, recipients: tuple[str, ...], fmt: str) -> None:
    """Validate REPO, then write one resolved bundle per organization into OUTPUT.

    Nothing is written when the repository has errors (exit 1) or a secret cannot be opened
    (missing key: exit 2; altered file: exit 1).
    """
    from . import bundle, sops
    from .diagnostics import error

    result = _load(repo)
    if result.errors:
        _report(result.diagnostics, result.files, fmt, result.root)
        click.echo("bifrost-gitops: not compiled: fix the errors above", err=True)
        sys.exit(EXIT_FINDINGS)
    project = result.catalog.project
    wanted = list(recipients) or (
        list(project.model.bundle.recipients) if project and project.model.bundle else []
    )
    try:
        written = bundle.write(
            result.catalog,
            result.root,
            out_dir,
            mode,
            recipients=wanted,
            keyring=None if mode == "redact" else sops.default_keyring(),
        )
    except bundle.BundleError as e:
        fail(str(e))
    except sops.NoKeyError as e:
        fail(f"{e} (hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, or compile with --secrets redact)")
    except sops.SopsError as e:
        d = error(
            "K005",
            e.file or "?",
            (0, 0),
            str(e).removeprefix(f"{e.file}: "),
            "restore the file from git or re-encrypt it; nothing was written",
        )
        _report([d], result.files, fmt, result.root)
        sys.exit(EXIT_FINDINGS)
    what = ", ".join(written.changed) if len(written.changed) <= 5 else f"{len(written.changed)} files"
    click.echo(
        f"{written.out_dir}: {written.files} files ({mode}); "
        f"{'changed: ' + what if written.changed else 'unchanged'}",
        err=True,
    )


@main.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def explain(args: tuple[str, ...], fmt: str) -> None:
    """Show what ORG gets for INTEGRATION, value by value, and where each value comes from.

    Usage: explain [REPO] ORG INTEGRATION [KEY]. ORG may be "global" (the defaults-only view).
    No key is needed: secrets are shown as <secret>.
    """
    from . import explain as ex

    repo = "."
    if len(args) >= 3 and (len(args) == 4 or _is_repo(args[0])):
        repo, args = args[0], args[1:]
    if len(args) not in (2, 3):
        fail("usage: explain [REPO] ORG INTEGRATION [KEY]")
    result = _load(repo)
    try:
        report = ex.explain(result.catalog, *args)
    except ex.ExplainError as e:
        fail(str(e))
    click.echo(ex.render_json(report) if fmt == "json" else ex.render_text(report), nl=False)


def _is_repo(path: str) -> bool:
    import os

    return os.path.isdir(path)


@main.command()
@click.argument("repo", default=".", type=click.Path())
@click.option("--base", required=True, help="The revision to compare against (e.g. origin/main).")
@click.option("--head", default=None, help="The revision under review (default: the work tree).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown is made to be posted as a pull-request comment.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything differs.")
def diff(repo: str, base: str, head: str | None, fmt: str, exit_code: bool) -> None:
    """Show what changes between two revisions for each organization's workflows.

    Both revisions are read straight from git objects; nothing in the work tree changes.
    Secrets are never shown: with keys, "changed"; without, "ciphertext changed".
    """
    import os

    from . import diff as df
    from . import gitrev, sops
    from .repo import RepoError, WorkTree, find_root, load_tree

    try:
        root = find_root(repo)
        base_tree = gitrev.GitTree(root, base)
        head_tree: Any = gitrev.GitTree(root, head) if head else WorkTree(root)
    except (RepoError, gitrev.GitError) as e:
        fail(str(e))
    base_result = load_tree(base_tree if base_tree.exists else gitrev.EmptyTree(root))
    head_result = load_tree(head_tree)

    def work_raw(rel: str) -> bytes:
        with open(os.path.join(root, rel), "rb") as f:
            return f.read()

    compare = df.secret_comparer(
        base_result, head_result, base_tree.read, head_tree.read if head else work_raw, sops.default_keyring()
    )
    result = df.diff(
        base_result,
        head_result,
        f"{base} ({base_tree.commit[:12]})",
        f"{head} ({head_tree.commit[:12]})" if head else "work tree",
        compare,
    )
    render = {"text": df.render_text, "markdown": df.render_markdown, "json": df.render_json}[fmt]
    sys.stdout.write(render(result))
    head_errors = [f for f in result.head_findings if f.severity == "error"]
    sys.exit(EXIT_FINDINGS if head_errors or (exit_code and result.changes) else EXIT_OK)


@main.group()
def secrets() -> None:
    """Set, check and audit the SOPS-encrypted secrets of a repository."""


@secrets.command("set")
@click.argument("integration")
@click.argument("key")
@click.option(
    "--org", help="The organization whose mapping gets the value (default: the integration default)."
)
@click.option("--repo", "repo", default=".", show_default=True, type=click.Path(), help="The repository.")
def secrets_set(integration: str, key: str, org: str | None, repo: str) -> None:
    """Encrypt a value into INTEGRATION's secret KEY, read from stdin or a hidden prompt.

    The value never goes on the command line: pipe it in (`pass show x | bifrost-gitops secrets
    set HaloPSA api_key --org contoso`) or type it at the prompt.
    """
    from . import secretops, sops

    result = _load(repo)
    if sys.stdin.isatty():
        value = click.prompt(f"{key}", hide_input=True, confirmation_prompt=True, err=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
    if not value:
        fail("empty value; nothing written")
    try:
        written = secretops.set_secret(result, integration, key, value, org)
    except secretops.SecretsError as e:
        fail(str(e))
    except sops.NoKeyError as e:
        fail(f"{e} (hint: set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)")
    except sops.SopsError as e:
        fail(str(e))
    click.echo(f"{written}: {key} set{f' for {org}' if org else ' (integration default)'}", err=True)


@secrets.command("check")
@click.argument("repo", default=".", type=click.Path())
@_FORMAT
def secrets_check(repo: str, fmt: str) -> None:
    """Open every encrypted file with the available keys and verify its MAC.

    Exit 0 when all open and verify, 1 when one was altered, 2 when a key is missing.
    """
    from . import secretops

    result = _load(repo)
    diags = _open_all(result)
    _report(diags, len(secretops.encrypted_files(result)), fmt, result.root)
    sys.exit(EXIT_FINDINGS if diags else EXIT_OK)


@secrets.command("recipients")
@click.argument("repo", default=".", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def secrets_recipients(repo: str, fmt: str) -> None:
    """List which files are encrypted to which recipients; flag drift from .sops.yaml (exit 1)."""
    import json

    from . import diagnostics as d
    from . import secretops

    result = _load(repo)
    rows = secretops.list_recipients(result)
    findings = secretops.recipient_findings(rows)
    if fmt == "json":
        json.dump(
            {"files": [r.__dict__ for r in rows], "drift": [f._asdict() for f in findings]},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for r in rows:
            click.echo(f"{r.path}: {', '.join(r.recipients) or '(none)'}")
        d.report_text(findings, len(rows), sys.stdout, d.use_colour(sys.stdout))
    sys.exit(EXIT_FINDINGS if findings else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
