"""The steps plan, apply and import share: connect (version gate), read live, plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import DeployError
from . import live as live_state
from .client import ApiError, Client
from .credentials import load_credentials
from .plan import Options, Plan, make_plan
from .source import load_desired, secret_values
from .spec import Manifest

if TYPE_CHECKING:
    from .importer import Imported


def connect(url: str | None, credentials: str | None, concurrency: int = 8, **kw: Any) -> Client:
    client = Client(load_credentials(url, credentials), concurrency=concurrency, **kw)
    try:
        client.check_version()
    except BaseException:
        client.close()
        raise
    return client


def plan_for(client: Client, desired: Manifest, opts: Options) -> Plan:
    """Read the live state (counting requests) and diff it against DESIRED."""
    client.add_sensitive(secret_values(desired))  # text and numbers; booleans are skipped
    state = live_state.read(client, desired["integrations"], include_ledger_managed=opts.prune)
    return make_plan(desired, state, opts, client.requests)  # the version check included


def _live_error(client: Client, e: Exception) -> DeployError:
    """A failure while reading Bifrost as one line naming that step, with every secret value
    and token the client knows cut out (a server may quote them back)."""
    return DeployError(f"cannot read the live state: {client.scrub(str(e))}")


def prepare(
    source: str, url: str | None, credentials: str | None, concurrency: int, opts: Options
) -> tuple[Client, Plan]:
    """What plan and apply start with: the desired state, a connected client, the plan.

    Raises RepositoryErrors (exit 1) when SOURCE has errors, else a one-line DeployError (exit 2).
    """
    desired = load_desired(source)
    client = connect(url, credentials, concurrency)
    try:
        return client, plan_for(client, desired, opts)
    except (ApiError, DeployError) as e:  # BadReply (a reply of the wrong shape) is a DeployError
        client.close()
        raise _live_error(client, e) from None
    except BaseException:
        client.close()
        raise


def import_to(client: Client, out_dir: str, age: list[str]) -> Imported:
    """``import_live``, whose failures become one line with secrets and tokens cut out."""
    from ..sops import SopsError
    from .importer import import_live
    from .replies import BadReply

    try:
        return import_live(client, out_dir, age)
    except (ApiError, BadReply) as e:
        raise _live_error(client, e) from None
    except (DeployError, SopsError) as e:  # writing the repository: sops, .sops.yaml, the folder
        raise DeployError(client.scrub(str(e))) from None


__all__ = [
    "ApiError",
    "Client",
    "Options",
    "Plan",
    "connect",
    "import_to",
    "load_desired",
    "plan_for",
    "prepare",
]
