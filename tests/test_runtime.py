"""The runtime SDK (bifrost_gitops.runtime) over bundles compiled from the example repository.

Real peers: the example repository compiled with the real compiler (sealed with its TEST-ONLY
age key, plain, redacted), real files, and for the workflow test a real HTTP server on
127.0.0.1 standing in for HaloPSA, called by the example workflow through httpx.
HOME / XDG_CONFIG_HOME live in tmp_path, so no key of the machine's user is ever used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pyrage  # type: ignore[import-untyped]
import pytest
import yaml

from bifrost_gitops import bundle, repo, runtime, sops
from bifrost_gitops.bundleformat import MODES
from bifrost_gitops.runtime import (
    Bundle,
    BundleIntegrityError,
    BundleKeyError,
    BundleReadError,
    IntegrationData,
    Integrations,
    NoScopeError,
    OAuthCredentials,
    UnknownOrganizationError,
    tokens,
)
from support import LoopbackServer, QuietHandler, isolate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "integrations"
KEY = EXAMPLE / "TEST-ONLY-age-key.txt"
RECIPIENT = "age17lkt25aqjtxlvdvklfh5ccp2kuy0jf0fclp9jyl45f30lfk5q4aq6cqnvz"
WORKFLOW = EXAMPLE / "workflows" / "halo_customers.py"
CONTOSO_ID = "5cf395b6-0759-4e36-a135-69c94cf3593a"
FABRIKAM_ID = "e7949ebd-2119-481e-a9ec-238e42d17a7d"


def _with_test_key(mp: pytest.MonkeyPatch, home: Path) -> None:
    """Isolated like every test (support.isolate), with the example's test key as the only key."""
    isolate(mp, home)
    mp.setenv("SOPS_AGE_KEY_FILE", str(KEY))


def compile_repo(root: Path, out: Path, mode: str) -> Path:
    result = repo.load(str(root))
    assert not result.errors, result.errors
    bundle.write(
        result.catalog,
        result.root,
        str(out),
        mode,
        recipients=[RECIPIENT],
        keyring=None if mode == "redact" else sops.default_keyring(),
    )
    return out


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example repository compiled once per mode (read-only: copy before altering)."""
    base = tmp_path_factory.mktemp("bundles")
    with pytest.MonkeyPatch.context() as mp:
        _with_test_key(mp, base / "home")
        return {mode: compile_repo(EXAMPLE, base / mode, mode) for mode in MODES}


MINTED = "minted-by-the-test-fetcher"


def _no_network_fetch(req: tokens.TokenRequest, clock: Callable[[], float]) -> tokens.Token:
    """The example's client-credentials provider (Microsoft) is never called from tests."""
    return tokens.Token(MINTED, 4_102_444_800.0)  # 2100-01-01: the same for every bundle


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> Iterator[None]:
    _with_test_key(monkeypatch, isolated_home)
    monkeypatch.setattr(tokens, "fetch", _no_network_fetch)
    runtime.integrations.clear_cache()
    yield
    runtime.integrations.clear_cache()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def source_secret(rel: str, *path: str) -> Any:
    """A secret's clear value, straight from the example repository's sops file."""
    node: Any = sops.decrypt_file(str(EXAMPLE / rel), identities=sops.default_keyring())
    for p in path:
        node = node[p]
    return node


def example_yaml(rel: str) -> Any:
    return yaml.safe_load((EXAMPLE / rel).read_text())


# --- get --------------------------------------------------------------------------------------


def test_get_mapped_org_override_default_and_secret(bundles: dict[str, Path]) -> None:
    sdk = Integrations(Bundle(bundles["seal"]))
    halo = run(sdk.get("HaloPSA", scope="contoso"))
    assert isinstance(halo, IntegrationData)
    assert halo.entity_id == "12"
    assert halo.entity_name == "Contoso Ltd"
    assert halo.integration_id is None  # the example declares no Bifrost UUID
    assert halo.config["page_size"] == 50  # contoso's override
    assert halo.config["base_url"] == "https://msp.halopsa.com"  # the default
    assert halo.config["ticket_types"] == {"incident": 1, "service_request": 3, "change": 9}
    assert halo.config["verify_ssl"] is True
    assert halo.config["api_key"] == source_secret(
        "integrations/HaloPSA/integration.yaml", "defaults", "secrets", "api_key"
    )
    assert halo.config_secret_keys == ["api_key"]
    assert halo.oauth is None

    fab = run(sdk.get("HaloPSA", scope="fabrikam"))
    assert fab.config["base_url"] == "https://fabrikam.halopsa.com"
    assert fab.config["ticket_types"] == {"incident": 1, "problem": 4}  # json replaced whole
    assert fab.config["api_key"] == source_secret(
        "integrations/HaloPSA/mappings/fabrikam.yaml", "secrets", "api_key"
    )
    assert fab.config["api_key"] != halo.config["api_key"]

    graph = run(sdk.get("Microsoft_Graph", scope="contoso"))
    assert graph.entity_id == "7c1a0f3e-5b2d-4e8a-9f61-3d4c2b1a0e9f"
    assert isinstance(graph.oauth, OAuthCredentials)
    assert graph.oauth.connection_name == "Microsoft_Graph"
    assert graph.oauth.token_url == f"https://login.microsoftonline.com/{graph.entity_id}/oauth2/v2.0/token"
    assert graph.oauth.client_id == "3b8e4a6c-2f1d-4c7e-9a0b-5d6e7f8a9b0c"
    assert graph.oauth.client_secret == source_secret("oauth/microsoft.yaml", "secrets", "client_secret")
    assert graph.oauth.scopes == ["https://graph.microsoft.com/.default"]
    # client credentials with {entity_id} in the token URL: minted at get, as Bifrost does
    assert graph.oauth.access_token == MINTED and graph.oauth.refresh_token is None
    assert graph.oauth.expires_at is not None


def test_org_without_mapping_gets_defaults_and_default_entity_id(bundles: dict[str, Path]) -> None:
    sdk = Integrations(Bundle(bundles["seal"]))
    halo = run(sdk.get("HaloPSA", scope="wingtip"))
    defaults = example_yaml("integrations/HaloPSA/integration.yaml")["defaults"]["config"]
    assert {k: v for k, v in halo.config.items() if k != "api_key"} == defaults
    assert halo.entity_name is None
    assert halo.entity_id is None  # HaloPSA has neither default_entity_id nor entity_id
    graph = run(sdk.get("Microsoft_Graph", scope="wingtip"))
    default_entity = example_yaml("integrations/Microsoft_Graph/integration.yaml")["default_entity_id"]
    assert graph.entity_id == default_entity
    assert graph.entity_name is None
    assert graph.oauth.token_url == f"https://login.microsoftonline.com/{default_entity}/oauth2/v2.0/token"


def test_scope_by_uuid_same_as_by_name(bundles: dict[str, Path]) -> None:
    sdk = Integrations(Bundle(bundles["seal"]))
    by_name = run(sdk.get("HaloPSA", scope="fabrikam"))
    assert run(sdk.get("HaloPSA", scope=FABRIKAM_ID)) == by_name
    assert run(sdk.get("HaloPSA", scope=FABRIKAM_ID.upper())) == by_name
    assert run(sdk.get("HaloPSA", scope=CONTOSO_ID)) != by_name


def test_scope_global_is_defaults_only(bundles: dict[str, Path]) -> None:
    sdk = Integrations(Bundle(bundles["seal"]))
    halo = run(sdk.get("HaloPSA", scope="global"))
    assert halo.config["page_size"] == 100 and halo.config["base_url"] == "https://msp.halopsa.com"
    assert halo.entity_name is None and halo.entity_id is None
    assert halo.config["api_key"] == source_secret(
        "integrations/HaloPSA/integration.yaml", "defaults", "secrets", "api_key"
    )
    graph = run(sdk.get("Microsoft_Graph", scope="global"))
    assert (
        graph.entity_id == example_yaml("integrations/Microsoft_Graph/integration.yaml")["default_entity_id"]
    )
    # an org without a mapping sees exactly the global view
    assert run(sdk.get("Microsoft_Graph", scope="wingtip")) == graph


def test_default_scope_and_bundle_from_env(bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from bifrost_gitops.runtime import integrations

    with pytest.raises(BundleReadError, match=runtime.ENV_BUNDLE):
        run(integrations.get("HaloPSA", scope="contoso"))
    monkeypatch.setenv(runtime.ENV_BUNDLE, str(bundles["seal"]))
    with pytest.raises(NoScopeError, match=runtime.ENV_ORG):
        run(integrations.get("HaloPSA"))
    monkeypatch.setenv(runtime.ENV_ORG, "northwind")
    halo = run(integrations.get("HaloPSA"))
    assert (halo.entity_id, halo.config["region"]) == ("47", "uk")
    assert integrations.get_sync("HaloPSA") == halo  # the sync twin
    assert run(integrations.get("HaloPSA", scope="contoso")).entity_id == "12"  # explicit scope wins
    monkeypatch.setenv(runtime.ENV_ORG, CONTOSO_ID)
    assert run(integrations.get("HaloPSA")).entity_id == "12"
    # the env var is followed when it changes
    monkeypatch.setenv(runtime.ENV_BUNDLE, str(bundles["plain"]))
    assert integrations.bundle.path == str(bundles["plain"])
    assert integrations.bundle.mode == "plain"


def test_unknown_integration_is_none(bundles: dict[str, Path]) -> None:
    sdk = Integrations(bundles["plain"])
    assert run(sdk.get("NoSuchThing", scope="contoso")) is None
    assert run(sdk.get("halopsa", scope="contoso")) is None  # names are case-sensitive, as in Bifrost
    assert run(sdk.get("NoSuchThing", scope="global")) is None
    assert run(sdk.list_mappings("NoSuchThing", scope="global")) is None
    assert run(sdk.get_mapping("NoSuchThing", scope="contoso")) is None


def test_unknown_org_is_a_lookup_error_naming_it(bundles: dict[str, Path]) -> None:
    sdk = Integrations(bundles["plain"])
    for scope in ("initech", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(UnknownOrganizationError) as info:
            run(sdk.get("HaloPSA", scope=scope))
        assert isinstance(info.value, LookupError)
        assert repr(scope) in str(info.value) and info.value.scope == scope
    with pytest.raises(LookupError, match="initech"):
        run(sdk.list_mappings("HaloPSA", scope="initech"))


def test_plain_sealed_redacted_agree(bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    sealed, plain = Integrations(bundles["seal"]), Integrations(bundles["plain"])
    for org in ("contoso", "fabrikam", "northwind", "tailspin-toys", "wingtip", "global"):
        for name in ("HaloPSA", "Microsoft_Graph", "NinjaOne"):
            a, b = sealed.get_sync(name, org), plain.get_sync(name, org)
            assert a is not None and a == b
            assert a.model_dump() == b.model_dump()
    assert json.loads((bundles["seal"] / "orgs" / "contoso.json").read_text())["sops"]  # really sealed
    # a redacted bundle needs no key and returns the marker for every secret, the rest unchanged
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    redacted = Integrations(bundles["redact"])
    halo, graph = redacted.get_sync("HaloPSA", "fabrikam"), redacted.get_sync("Microsoft_Graph", "contoso")
    assert halo.config["api_key"] == runtime.REDACTED == bundle.REDACTED
    assert graph.oauth.client_secret == runtime.REDACTED
    clear = plain.get_sync("HaloPSA", "fabrikam")
    assert {k: v for k, v in halo.config.items() if k != "api_key"} == {
        k: v for k, v in clear.config.items() if k != "api_key"
    }
    assert redacted.bundle.mode == "redact"


@pytest.mark.parametrize("mode", ["plain", "seal"])
def test_tampered_org_file_is_refused(bundles: dict[str, Path], tmp_path: Path, mode: str) -> None:
    b = copy_bundle(bundles[mode], tmp_path / "b")
    target = b / "orgs" / "contoso.json"
    if mode == "plain":
        target.write_text(target.read_text().replace('"Contoso Ltd"', '"Contoso Ltx"', 1))
    else:  # same sops content, other bytes: the sha256 alone catches it
        target.write_bytes(target.read_bytes().replace(b",", b", ", 1))
    sdk = Integrations(Bundle(b))
    with pytest.raises(BundleIntegrityError) as info:
        sdk.get_sync("HaloPSA", "contoso")
    assert str(target) in str(info.value) and "sha256" in str(info.value)
    assert sdk.get_sync("HaloPSA", "fabrikam").entity_id == "1"  # the others still open
    with pytest.raises(BundleIntegrityError):  # not cached as good
        sdk.get_sync("HaloPSA", CONTOSO_ID)


def test_sealed_file_altered_with_matching_index_fails_the_mac(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    b = copy_bundle(bundles["seal"], tmp_path / "b")
    target = b / "orgs" / "contoso.json"
    doc = json.loads(target.read_text())
    doc["integrations"]["HaloPSA"]["entity_id"] = doc["integrations"]["NinjaOne"][
        "entity_id"
    ]  # swap ciphertexts
    target.write_text(json.dumps(doc))
    index = json.loads((b / "index.json").read_text())
    index["orgs"]["contoso"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (b / "index.json").write_text(json.dumps(index))
    with pytest.raises(BundleIntegrityError, match=r"contoso\.json"):
        Integrations(Bundle(b)).get_sync("HaloPSA", "contoso")


def test_sealed_value_retagged_as_bytes_is_refused(bundles: dict[str, Path], tmp_path: Path) -> None:
    """The sops type tag sits outside the MAC: a value retagged type:bytes must not reach a workflow."""
    b = copy_bundle(bundles["seal"], tmp_path / "b")
    target = b / "orgs" / "contoso.json"
    text = target.read_text()
    assert ",type:str]" in text
    target.write_text(text.replace(",type:str]", ",type:bytes]", 1))
    index = json.loads((b / "index.json").read_text())
    index["orgs"]["contoso"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (b / "index.json").write_text(json.dumps(index))
    with pytest.raises(BundleIntegrityError, match=r"contoso\.json: .* is bytes") as info:
        Integrations(Bundle(b)).get_sync("HaloPSA", "contoso")
    assert "b'" not in str(info.value)  # the value itself is never in the message
    assert Integrations(Bundle(b)).get_sync("HaloPSA", "fabrikam") is not None  # the others still open


def test_missing_runtime_key_names_file_and_sources(
    bundles: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")
    sdk = Integrations(Bundle(bundles["seal"]))
    with pytest.raises(BundleKeyError) as info:
        sdk.get_sync("HaloPSA", "contoso")
    msg = str(info.value)
    assert str(bundles["seal"] / "orgs" / "contoso.json") in msg
    assert "SOPS_AGE_KEY_FILE: not set" in msg and "SOPS_AGE_KEY: not set" in msg
    assert RECIPIENT in msg
    assert "AGE-SECRET-KEY" not in msg.upper()
    # a wrong key: same error, the key file named
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(wrong))
    with pytest.raises(BundleKeyError, match=f"SOPS_AGE_KEY_FILE={wrong}: 1 key"):
        Integrations(Bundle(bundles["seal"])).get_sync("HaloPSA", "contoso")
    # an explicit keyring opens it whatever the environment says
    ring = sops.make_keyring(sops.parse_identities(KEY.read_text()))
    assert (
        Integrations(Bundle(bundles["seal"], keyring=ring)).get_sync("HaloPSA", "contoso").entity_id == "12"
    )


def test_results_are_cached_per_process(bundles: dict[str, Path], tmp_path: Path) -> None:
    b = copy_bundle(bundles["seal"], tmp_path / "b")
    sdk = Integrations(Bundle(b))
    first = sdk.get_sync("HaloPSA", "contoso")
    (b / "orgs" / "contoso.json").unlink()
    (b / "orgs" / "fabrikam.json").unlink()
    (b / "index.json").unlink()
    assert sdk.get_sync("HaloPSA", "contoso") == first  # nothing re-read
    assert sdk.get_sync("NinjaOne", CONTOSO_ID).entity_id == "3"  # same file, by UUID: cached too
    with pytest.raises(BundleReadError, match=r"fabrikam\.json"):
        sdk.get_sync("HaloPSA", "fabrikam")  # never read: it is gone
    sdk.clear_cache()
    with pytest.raises(BundleReadError, match=r"index\.json"):
        sdk.get_sync("HaloPSA", "contoso")


def test_recompiled_bundle_is_picked_up_for_files_not_read_yet(
    bundles: dict[str, Path], tmp_path: Path
) -> None:
    src = tmp_path / "repo"
    shutil.copytree(EXAMPLE, src)
    out = compile_repo(src, tmp_path / "b", "plain")
    sdk = Integrations(Bundle(out))
    assert sdk.get_sync("HaloPSA", "contoso").config["page_size"] == 50
    m = src / "integrations" / "HaloPSA" / "mappings" / "northwind.yaml"
    m.write_text(m.read_text().replace("region: uk", "region: au"))
    compile_repo(src, out, "plain")  # swapped in under the running process
    assert sdk.get_sync("HaloPSA", "northwind").config["region"] == "au"
    assert sdk.get_sync("HaloPSA", "contoso").config["page_size"] == 50


def test_returned_objects_are_copies(bundles: dict[str, Path]) -> None:
    sdk = Integrations(bundles["plain"])
    a = sdk.get_sync("HaloPSA", "contoso")
    a.config["page_size"] = 1
    a.config["ticket_types"]["incident"] = 99
    a.config_secret_keys.append("base_url")
    a.entity_id = "x"
    g = sdk.get_sync("Microsoft_Graph", "contoso")
    g.oauth.scopes.append("evil")
    g.oauth.client_secret = "changed"
    b = sdk.get_sync("HaloPSA", "contoso")
    assert b.config["page_size"] == 50 and b.config["ticket_types"]["incident"] == 1
    assert b.config_secret_keys == ["api_key"] and b.entity_id == "12"
    g2 = sdk.get_sync("Microsoft_Graph", "contoso")
    assert g2.oauth.scopes == ["https://graph.microsoft.com/.default"] and g2.oauth.client_secret != "changed"
    assert isinstance(b.config, dict)
    assert json.loads(json.dumps(b.config)) == b.config  # still plain JSON for the workflow


# --- mappings -------------------------------------------------------------------------------


def test_list_and_get_mappings(bundles: dict[str, Path]) -> None:
    sdk = Integrations(Bundle(bundles["seal"]))
    every = run(sdk.list_mappings("HaloPSA", scope="global"))
    assert [m.organization for m in every] == ["contoso", "fabrikam", "northwind", "tailspin-toys"]
    assert [m.entity_id for m in every] == ["12", "1", "47", "103"]
    assert every[0].organization_id == CONTOSO_ID
    assert every[0].config["page_size"] == 50  # merged config, as Bifrost returns it
    assert every[0].id is None and every[0].oauth_token_id is None
    graph = run(sdk.list_mappings("Microsoft_Graph", scope="global"))
    assert [m.organization for m in graph] == ["contoso", "fabrikam", "tailspin-toys"]
    assert [m.organization for m in run(sdk.list_mappings("HaloPSA", scope="contoso"))] == ["contoso"]
    assert run(sdk.list_mappings("HaloPSA", scope="wingtip")) == []
    assert run(sdk.get_mapping("HaloPSA", scope="northwind")).entity_id == "47"
    assert run(sdk.get_mapping("HaloPSA", scope="wingtip")) is None
    assert run(sdk.get_mapping("HaloPSA", scope="global", entity_id="103")).organization == "tailspin-toys"
    assert run(sdk.get_mapping("HaloPSA", scope="global", entity_id="nope")) is None
    assert run(sdk.get_mapping("HaloPSA", scope="global")) is None
    assert "<secret>" in repr(every[1]) and every[1].config["api_key"] not in repr(every[1])


# --- leak guard -----------------------------------------------------------------------------

CANARY = "CANARY-7f3e9a-do-not-print"


def test_repr_masks_secrets_with_canary() -> None:
    oauth = OAuthCredentials(
        connection_name="c",
        client_id="id",
        client_secret=CANARY + "-cs",
        token_url="https://t",
        scopes=["s"],
        access_token=CANARY + "-at",
        refresh_token=CANARY + "-rt",
    )
    data = IntegrationData(
        integration_id=None,
        entity_id="e",
        entity_name=None,
        config={"api_key": CANARY + "-key", "url": "https://x"},
        oauth=oauth,
        config_secret_keys=["api_key"],
    )
    for text in (
        repr(data),
        str(data),
        f"{data}",
        repr(data.config),
        str(data.config),
        f"{data.config}",
        repr(oauth),
    ):
        assert CANARY not in text
        assert "<secret>" in text
    assert "https://x" in repr(data)  # non-secret values still shown
    assert data.config["api_key"] == CANARY + "-key"  # the values themselves are clear
    assert (oauth.client_secret, oauth.access_token, oauth.refresh_token) == (
        CANARY + "-cs",
        CANARY + "-at",
        CANARY + "-rt",
    )
    assert data.model_dump()["config"]["api_key"] == CANARY + "-key"


def test_repr_masks_real_bundle_secrets(bundles: dict[str, Path]) -> None:
    sdk = Integrations(Bundle(bundles["seal"]))
    halo, graph = sdk.get_sync("HaloPSA", "fabrikam"), sdk.get_sync("Microsoft_Graph", "contoso")
    secrets_ = [halo.config["api_key"], graph.oauth.client_secret]
    for text in (
        repr(halo),
        str(halo.config),
        repr(graph),
        repr(graph.oauth),
        repr(sdk.list_mappings_sync("HaloPSA", "global")),
    ):
        for s in secrets_:
            assert s not in text


# --- the example workflow against a local HaloPSA ------------------------------------------


class FakeHalo:
    """A HaloPSA stand-in: records requests, serves one client by id or a paged list."""

    CLIENTS: ClassVar[list[dict[str, Any]]] = [{"id": i, "name": f"Client {i}"} for i in (1, 12, 47)]

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                fake.requests.append({"path": url.path, "query": query, "headers": dict(self.headers)})
                if url.path.startswith("/api/Client/"):
                    cid = int(url.path.rsplit("/", 1)[1])
                    body: Any = next((c for c in fake.CLIENTS if c["id"] == cid), None)
                    code = 200 if body else 404
                elif url.path == "/api/Client":
                    page, size = int(query.get("page_no", "1")), 2
                    batch = fake.CLIENTS[(page - 1) * size : page * size]
                    body, code = {"clients": batch, "record_count": len(fake.CLIENTS)}, 200
                else:
                    body, code = {"error": "not found"}, 404
                self.send_json(code, body)

        self.loop = LoopbackServer(Handler)
        self.url = self.loop.url

    def __enter__(self) -> FakeHalo:
        self.loop.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.close()


def load_workflow() -> types.ModuleType:
    """The example workflow with only its import line changed."""
    source = WORKFLOW.read_text()
    changed = source.replace(
        "from bifrost import integrations", "from bifrost_gitops.runtime import integrations"
    )
    before, after = source.splitlines(), changed.splitlines()
    assert len(before) == len(after)
    assert [(a, b) for a, b in zip(before, after, strict=True) if a != b] == [
        ("from bifrost import integrations", "from bifrost_gitops.runtime import integrations")
    ]
    module = types.ModuleType("halo_customers_under_test")
    module.__file__ = str(WORKFLOW)
    exec(compile(changed, str(WORKFLOW), "exec"), module.__dict__)
    return module


@pytest.fixture
def halo_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    def use(org: str) -> None:
        monkeypatch.setenv(runtime.ENV_ORG, org)

    return use


def test_example_workflow_runs_against_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, halo_env: Callable[[str], None]
) -> None:
    with FakeHalo() as halo:
        src = tmp_path / "repo"
        shutil.copytree(EXAMPLE, src)
        for rel in ("integrations/HaloPSA/integration.yaml", "integrations/HaloPSA/mappings/fabrikam.yaml"):
            f = src / rel
            text = f.read_text()
            for url in ("https://msp.halopsa.com", "https://fabrikam.halopsa.com"):
                text = text.replace(url, halo.url + ("/fabrikam" if "fabrikam" in url else ""))
            f.write_text(text)
        out = compile_repo(src, tmp_path / "bundle", "seal")
        monkeypatch.setenv(runtime.ENV_BUNDLE, str(out))
        workflow = load_workflow()
        default_key = source_secret("integrations/HaloPSA/integration.yaml", "defaults", "secrets", "api_key")

        # a mapped org: its own Halo client, by entity id, with the default API key
        halo_env("contoso")
        assert run(workflow.halo_customers()) == [{"id": 12, "name": "Client 12"}]
        req = halo.requests[-1]
        assert req["path"] == "/api/Client/12"
        assert req["headers"]["Authorization"] == f"Bearer {default_key}"
        assert req["query"] == {"pageinate": "true", "page_size": "50", "tenant": "msp"}

        # an org without a mapping: no entity id, every client, page by page
        halo.requests.clear()
        halo_env("wingtip")
        assert run(workflow.halo_customers(include_inactive=True)) == FakeHalo.CLIENTS
        assert [r["query"]["page_no"] for r in halo.requests] == ["1", "2"]
        assert all(r["path"] == "/api/Client" for r in halo.requests)
        assert all(r["headers"]["Authorization"] == f"Bearer {default_key}" for r in halo.requests)
        assert halo.requests[0]["query"]["includeinactive"] == "true"
        assert halo.requests[0]["query"]["page_size"] == "100"

        # fabrikam: its own instance URL and its own API key (a mapping secret), by UUID
        halo.requests.clear()
        halo_env(FABRIKAM_ID)
        monkeypatch.setattr(FakeHalo, "CLIENTS", [{"id": 1, "name": "Fabrikam"}])
        with pytest.raises(Exception, match="404"):  # /fabrikam/api/... is not served: proves the URL
            run(workflow.halo_customers())
        req = halo.requests[-1]
        assert req["path"] == "/fabrikam/api/Client/1"
        fab_key = source_secret("integrations/HaloPSA/mappings/fabrikam.yaml", "secrets", "api_key")
        assert req["headers"]["Authorization"] == f"Bearer {fab_key}"
        assert req["query"]["tenant"] == "fabrikam"


def test_org_level_mapped_list_wins_over_inference(bundles: dict[str, Path], tmp_path: Path) -> None:
    """Or an org file's top-level ``mapped`` list of integration names (the other possible shape)."""
    b = copy_bundle(bundles["plain"], tmp_path / "b")
    target = b / "orgs" / "wingtip.json"
    doc = json.loads(target.read_text())
    doc["mapped"] = ["Microsoft_Graph"]
    target.write_bytes(bundle.canonical(doc))
    index = json.loads((b / "index.json").read_text())
    index["orgs"]["wingtip"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (b / "index.json").write_bytes(bundle.canonical(index))
    sdk = Integrations(b)
    assert "wingtip" in [m.organization for m in sdk.list_mappings_sync("Microsoft_Graph", "global") or []]
    assert sdk.get_mapping_sync("HaloPSA", "wingtip") is None


@pytest.mark.parametrize("mode", ["plain", "seal"])
def test_org_file_swapped_for_another_orgs_is_refused(
    bundles: dict[str, Path], tmp_path: Path, mode: str
) -> None:
    """fabrikam's file copied over contoso's, index.json's sha256 fixed: contoso gets no fabrikam secret."""
    b = copy_bundle(bundles[mode], tmp_path / "b")
    target = b / "orgs" / "contoso.json"
    target.write_bytes((b / "orgs" / "fabrikam.json").read_bytes())
    index = json.loads((b / "index.json").read_text())
    index["orgs"]["contoso"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
    (b / "index.json").write_bytes(bundle.canonical(index))
    sdk = Integrations(Bundle(b))
    for scope in ("contoso", CONTOSO_ID):
        with pytest.raises(BundleIntegrityError) as info:
            sdk.get_sync("HaloPSA", scope)
        assert str(target) in str(info.value) and "'fabrikam'" in str(info.value)
    with pytest.raises(BundleIntegrityError):
        sdk.list_mappings_sync("HaloPSA", "global")
    assert sdk.get_sync("HaloPSA", "fabrikam").entity_id == "1"  # the others still open


@pytest.mark.parametrize("what", ["global", "id"])
def test_global_swapped_or_org_id_changed_is_refused(
    bundles: dict[str, Path], tmp_path: Path, what: str
) -> None:
    b = copy_bundle(bundles["plain"], tmp_path / "b")
    index = json.loads((b / "index.json").read_text())
    if what == "global":  # an org's file (its secrets) served as the defaults-only view
        target = b / index["global"]["file"]
        target.write_bytes((b / "orgs" / "contoso.json").read_bytes())
        index["global"]["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()
        scope = "global"
    else:  # index entry re-pointed at another UUID
        target = b / "orgs" / "contoso.json"
        index["orgs"]["contoso"]["id"] = FABRIKAM_ID
        scope = "contoso"
    (b / "index.json").write_bytes(bundle.canonical(index))
    with pytest.raises(BundleIntegrityError) as info:
        Integrations(Bundle(b)).get_sync("HaloPSA", scope)
    assert str(target) in str(info.value)
