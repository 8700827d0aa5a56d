"""Generate a synthetic but valid bifrost-gitops v1 repository, for benchmarks.

    python benchmarks/generate.py OUT_DIR --orgs 500 --integrations 20 [--seed N] [--secret-fraction 0.5]

The repository holds bifrost-gitops.yaml, .sops.yaml, organizations.yaml, one or two OAuth
providers, ``integrations`` Integration documents (eight-key config_schema, defaults, some on an
OAuthProvider, one with an inline provider) and one Mapping per (organization, integration).
A ``secret_fraction`` of the mappings carry a ``secrets:`` block laid out the way sops writes it
(ENC[AES256_GCM,...] values and a trailing ``sops:`` block); the ciphertext is random bytes, so
the files validate but do not decrypt.

Output is a pure function of the parameters. It is written to a temporary sibling folder and
renamed into place, with a marker file (``.bench-params.json``, a dot file, so not a document)
holding the parameters: a second call with the same parameters does nothing.

``generate()`` is importable so that other benchmarks can reuse it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import sys
import uuid
from dataclasses import dataclass
from typing import Any

MARKER = ".bench-params.json"
GENERATOR_VERSION = 1  # bump when the output changes, so cached repositories are rebuilt

_ADJ = [
    "amber",
    "azure",
    "bold",
    "brisk",
    "cedar",
    "clear",
    "coastal",
    "copper",
    "crisp",
    "delta",
    "eagle",
    "east",
    "ember",
    "fair",
    "first",
    "golden",
    "granite",
    "harbor",
    "iron",
    "jade",
    "keystone",
    "lake",
    "lunar",
    "maple",
    "metro",
    "north",
    "oak",
    "pine",
    "prime",
    "quartz",
    "rapid",
    "red",
    "ridge",
    "river",
    "royal",
    "silver",
    "south",
    "stone",
    "summit",
    "swift",
    "true",
    "union",
    "valley",
    "vertex",
    "west",
]
_NOUN = [
    "analytics",
    "bakery",
    "builders",
    "capital",
    "clinic",
    "consulting",
    "dental",
    "design",
    "energy",
    "engineering",
    "farms",
    "foods",
    "freight",
    "group",
    "health",
    "holdings",
    "insurance",
    "labs",
    "law",
    "logistics",
    "marine",
    "media",
    "medical",
    "motors",
    "partners",
    "pharma",
    "properties",
    "realty",
    "retail",
    "robotics",
    "school",
    "solutions",
    "studios",
    "supply",
    "systems",
    "tech",
    "textiles",
    "trading",
    "transport",
    "travel",
    "ventures",
    "works",
]
_INTEGRATIONS = [
    "HaloPSA",
    "Microsoft_Graph",
    "ConnectWise_Manage",
    "Autotask",
    "NinjaOne",
    "Datto_RMM",
    "IT_Glue",
    "Hudu",
    "Pax8",
    "Sophos_Central",
    "SentinelOne",
    "Huntress",
    "Kaseya_VSA",
    "Syncro",
    "Liongard",
    "Auvik",
    "Atera",
    "Rewst",
    "Pia",
    "CIPP",
    "Exchange_Online",
    "Intune",
    "Defender",
    "Duo",
    "Mimecast",
    "Proofpoint",
    "KnowBe4",
    "Keeper",
    "Dropsuite",
    "Acronis",
]
_REGIONS = ["us", "eu", "uk", "au", "ca"]
_STRING_KEYS = ["site_name", "board_name", "queue", "default_team", "ticket_type", "client_label"]
_INT_KEYS = ["page_size", "max_results", "batch_size", "retry_count", "poll_minutes"]
_BOOL_KEYS = ["sync_enabled", "auto_close", "create_contacts", "verify_tls", "include_archived"]
_JSON_KEYS = ["field_map", "sku_map", "status_map", "priority_map"]
_SECRET_KEYS = ["api_key", "api_secret", "webhook_secret", "password"]

_HEADER = "apiVersion: bifrost-gitops/v1\n"
_AGE_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


@dataclass(frozen=True)
class Params:
    orgs: int
    integrations: int
    seed: int
    secret_fraction: float

    def marker(self) -> dict[str, Any]:
        return {"generator": GENERATOR_VERSION, **self.__dict__}


@dataclass
class _Key:
    key: str
    type: str
    required: bool = False
    options: list[str] | None = None
    description: str | None = None


@dataclass
class _Integ:
    name: str
    keys: list[_Key]
    oauth: str | None  # "ref", "inline" or None
    secret_defaults: bool
    entity_style: str  # "guid", "number", "slug"


def _q(s: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s)


def _kv(prefix: str, key: str, value: str) -> str:
    """One ``key: value`` line; a block value (starting with a newline) follows the colon."""
    return f"{prefix}{key}:{'' if value.startswith(chr(10)) else ' '}{value}\n"


def _b64(rng: random.Random, n: int) -> str:
    return base64.b64encode(rng.randbytes(n)).decode("ascii")


def _enc(rng: random.Random, n: int, typ: str = "str") -> str:
    """A value shaped like sops output: AES256-GCM with a 32-byte iv and a 16-byte tag."""
    return f"ENC[AES256_GCM,data:{_b64(rng, n)},iv:{_b64(rng, 32)},tag:{_b64(rng, 16)},type:{typ}]"


def _sops_block(rng: random.Random) -> str:
    """The metadata block sops appends to a file it encrypted for one age recipient."""
    # an age file for one X25519 recipient: its text header, then (here random) binary stanzas
    body = b"age-encryption.org/v1\n-> X25519 " + rng.randbytes(rng.randint(160, 200))
    armor = base64.b64encode(body).decode("ascii")
    lines = [armor[i : i + 64] for i in range(0, len(armor), 64)]
    enc = "".join(f"            {line}\n" for line in lines)
    t = 1_735_689_600 + rng.randrange(300 * 86_400)  # some time in 2025
    d = _utc(t)
    return (
        "sops:\n"
        "    age:\n"
        f"        - recipient: {_AGE_RECIPIENT}\n"
        "          enc: |\n"
        "            -----BEGIN AGE ENCRYPTED FILE-----\n"
        f"{enc}"
        "            -----END AGE ENCRYPTED FILE-----\n"
        f'    lastmodified: "{d}"\n'
        f"    mac: {_enc(rng, 64)}\n"
        "    encrypted_regex: ^secrets$\n"
        "    mac_only_encrypted: true\n"
        "    version: 3.11.0\n"
    )


def _utc(t: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _org_names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for i in range(n):
        base = f"{rng.choice(_ADJ)}-{rng.choice(_NOUN)}"
        name = base if base not in seen else f"{base}-{i}"
        seen.add(name)
        names.append(name)
    return names


def _integrations(rng: random.Random, n: int) -> list[_Integ]:
    out: list[_Integ] = []
    for i in range(n):
        name = _INTEGRATIONS[i] if i < len(_INTEGRATIONS) else f"Integration_{i:03d}"
        oauth = "ref" if i % 4 == 1 else "inline" if i % 7 == 3 else None
        secret_defaults = i % 5 == 2
        opts = _REGIONS[: rng.randint(3, 5)]
        keys = [
            _Key("base_url", "string", True, description=f"{name.replace('_', ' ')} API base URL"),
            _Key("region", "string", options=opts, description="Data residency region"),
            _Key(rng.choice(_STRING_KEYS), "string", True),  # every mapping sets it
            _Key(rng.choice(_INT_KEYS), "int"),
            _Key("timeout_seconds", "int", True),  # required, has a default
            _Key(rng.choice(_BOOL_KEYS), "bool"),
            _Key(rng.choice(_JSON_KEYS), "json"),
            _Key(rng.choice(_SECRET_KEYS), "secret", required=secret_defaults),
        ]
        style = "guid" if oauth else rng.choice(["number", "slug", "guid"])
        out.append(_Integ(name, keys, oauth, secret_defaults, style))
    return out


def _value(rng: random.Random, k: _Key, org: str, ind: str | None = None) -> str:
    """The YAML text of a value of the key's type, after ``key:``.

    ``ind`` None: as a person writes it (quoted text, flow mappings); else as sops re-emits a
    file it encrypted: plain scalars where YAML allows, block mappings indented by ``ind``.
    """
    if k.type == "string":
        if k.options:
            return rng.choice(k.options)
        text = f"{org}-{rng.choice(_NOUN)}"
        return text if ind is not None else _q(text)
    if k.type == "int":
        return str(rng.choice([10, 25, 50, 100, 200, 500, rng.randint(1, 1000)]))
    if k.type == "bool":
        return "true" if rng.random() < 0.5 else "false"
    # json: a small object, written as a JSON flow mapping (valid YAML)
    obj = {
        f"{rng.choice(_NOUN)}_{j}": rng.choice([rng.randint(0, 99), rng.choice(_REGIONS), True, None])
        for j in range(rng.randint(1, 4))
    }
    if ind is None:
        return json.dumps(obj)
    return "".join(f"\n{ind}{key}: {v if isinstance(v, str) else json.dumps(v)}" for key, v in obj.items())


def _entity_id(rng: random.Random, style: str, org: str) -> str:
    if style == "guid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if style == "number":
        return str(rng.randint(1, 99_999))
    return f"{org}-{rng.randint(1, 99)}"


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def _project() -> str:
    return _HEADER + f"kind: Project\nbundle:\n  recipients: [{_AGE_RECIPIENT}]\n"


def _sops_config() -> str:
    return (
        "creation_rules:\n"
        "  - path_regex: \\.ya?ml$\n"
        "    encrypted_regex: ^secrets$\n"
        "    mac_only_encrypted: true\n"
        f"    age: {_AGE_RECIPIENT}\n"
    )


def _organizations(rng: random.Random, names: list[str]) -> str:
    parts = [_HEADER, "kind: Organizations\norganizations:\n"]
    for name in names:
        org_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        display = " ".join(w.capitalize() for w in name.split("-")) + rng.choice([" Ltd", " Inc", " LLC", ""])
        parts.append(f"  - name: {name}\n    id: {org_id}\n    display_name: {display}\n")
    return "".join(parts)


def _provider(rng: random.Random) -> str:
    """A client-credentials provider (so it has an encrypted client secret), as sops writes it."""
    return (
        _HEADER + "kind: OAuthProvider\n"
        "name: microsoft\n"
        "display_name: Microsoft Entra ID\n"
        "flow: client_credentials\n"
        "token_url: https://login.microsoftonline.com/{entity_id}/oauth2/v2.0/token\n"
        "scopes:\n"
        "    - https://graph.microsoft.com/.default\n"
        f"client_id: {uuid.UUID(int=rng.getrandbits(128), version=4)}\n"
        "secrets:\n"
        f"    client_secret: {_enc(rng, 40)}\n" + _sops_block(rng)
    )


def _integration(rng: random.Random, ig: _Integ) -> str:
    ind = "    " if ig.secret_defaults else "  "  # sops re-indents what it encrypts to 4 spaces
    lines = [_HEADER, "kind: Integration\n", f"name: {ig.name}\n"]
    lines.append(f"description: {ig.name.replace('_', ' ')} for every client\n")
    lines.append(f"id: {uuid.UUID(int=rng.getrandbits(128), version=4)}\n")
    lines.append(
        "entity_id_name: "
        + {"guid": "Tenant ID", "number": "Company ID", "slug": "Site"}[ig.entity_style]
        + "\n"
    )
    if ig.oauth == "ref":
        lines.append(f"oauth:\n{ind}provider: microsoft\n")
    elif ig.oauth == "inline":
        lines.append(
            f"oauth:\n{ind}flow: authorization_code\n"
            f"{ind}authorization_url: https://auth.example.com/{ig.name.lower()}/authorize\n"
            f"{ind}token_url: https://auth.example.com/{ig.name.lower()}/{{entity_id}}/token\n"
            f"{ind}scopes: [read, write]\n"
            f"{ind}client_id: {_q(ig.name.lower() + '-client')}\n"
        )
    lines.append("config_schema:\n")
    for k in ig.keys:
        fields = [("key", k.key), ("type", k.type)]
        if k.required:
            fields.append(("required", "true"))
        if k.options:
            opts = f"[{', '.join(k.options)}]"
            fields.append(
                (
                    "options",
                    opts if not ig.secret_defaults else "".join(f"\n{ind}{ind}  - {o}" for o in k.options),
                )
            )
        if k.description:
            fields.append(("description", k.description if ig.secret_defaults else _q(k.description)))
        if ig.secret_defaults:  # sops writes block style
            lines.append(
                "".join(_kv(f"{ind}{'- ' if j == 0 else '  '}", f, v) for j, (f, v) in enumerate(fields))
            )
        else:
            lines.append(f"{ind}- {{{', '.join(f'{f}: {v}' for f, v in fields)}}}\n")
    int_key = ig.keys[3].key
    lines.append(f"defaults:\n{ind}config:\n")
    lines.append(f"{ind}{ind}base_url: https://api.example.com/{ig.name.lower()}/v2\n")
    lines.append(f"{ind}{ind}timeout_seconds: 30\n")
    lines.append(f"{ind}{ind}{int_key}: 100\n")
    lines.append(f"{ind}{ind}region: {ig.keys[1].options[0] if ig.keys[1].options else 'us'}\n")
    if ig.secret_defaults:
        lines.append(f"{ind}secrets:\n{ind}{ind}{ig.keys[7].key}: {_enc(rng, rng.randint(24, 48))}\n")
        lines.append(_sops_block(rng))
    return "".join(lines)


def _mapping(rng: random.Random, ig: _Integ, org: str, secret: bool) -> str:
    ind = "    " if secret else "  "
    lines = [
        _HEADER,
        "kind: Mapping\n",
        f"integration: {ig.name}\n",
        f"organization: {org}\n",
        f"entity_id: {_q(_entity_id(rng, ig.entity_style, org))}\n",
        f"entity_name: {org}.onmicrosoft.com\n"
        if ig.entity_style == "guid"
        else f"entity_name: {org.replace('-', ' ').title()}\n"
        if secret
        else f"entity_name: {_q(org.replace('-', ' ').title())}\n",
        "config:\n",
    ]
    required_str = ig.keys[2]
    lines.append(_kv(ind, required_str.key, _value(rng, required_str, org, ind if secret else None)))
    optional = [k for i, k in enumerate(ig.keys) if i not in (0, 2) and k.type != "secret"]
    for k in rng.sample(optional, rng.randint(1, len(optional))):
        lines.append(_kv(ind, k.key, _value(rng, k, org, ind + ind if secret else None)))
    if secret:
        lines.append(f"secrets:\n{ind}{ig.keys[7].key}: {_enc(rng, rng.randint(16, 64))}\n")
        if ig.oauth and rng.random() < 0.3:
            lines.append(f"{ind}refresh_token: {_enc(rng, rng.randint(300, 600))}\n")
        lines.append(_sops_block(rng))
    return "".join(lines)


def _build(tmp: str, p: Params) -> int:
    rng = random.Random(p.seed)
    orgs = _org_names(rng, p.orgs)
    integs = _integrations(rng, p.integrations)
    _write(os.path.join(tmp, "bifrost-gitops.yaml"), _project())
    _write(os.path.join(tmp, ".sops.yaml"), _sops_config())
    _write(os.path.join(tmp, "organizations.yaml"), _organizations(rng, orgs))
    count = 2
    if any(ig.oauth == "ref" for ig in integs):
        os.mkdir(os.path.join(tmp, "oauth"))
        _write(os.path.join(tmp, "oauth", "microsoft.yaml"), _provider(rng))
        count += 1
    for ig in integs:
        mdir = os.path.join(tmp, "integrations", ig.name, "mappings")
        os.makedirs(mdir)
        _write(os.path.join(tmp, "integrations", ig.name, "integration.yaml"), _integration(rng, ig))
        count += 1
        for org in orgs:
            secret = rng.random() < p.secret_fraction
            _write(os.path.join(mdir, f"{org}.yaml"), _mapping(rng, ig, org, secret))
            count += 1
    return count


def _read_marker(out_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(out_dir, MARKER), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def generate(
    out_dir: str,
    orgs: int = 500,
    integrations: int = 20,
    seed: int = 0,
    secret_fraction: float = 0.5,
) -> bool:
    """Write the repository to ``out_dir``; returns False when it was already there.

    An existing ``out_dir`` is replaced only if it holds our marker (it is one of ours);
    any other non-empty folder is refused with ValueError.
    """
    if orgs < 1 or integrations < 1 or not 0.0 <= secret_fraction <= 1.0:
        raise ValueError("need orgs >= 1, integrations >= 1 and 0 <= secret_fraction <= 1")
    p = Params(orgs, integrations, seed, secret_fraction)
    out_dir = os.path.abspath(out_dir)
    marker = _read_marker(out_dir)
    if marker == p.marker():
        return False
    if os.path.isdir(out_dir) and os.listdir(out_dir) and marker is None:
        raise ValueError(f"{out_dir} is not empty and was not written by this generator; refusing")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = f"{out_dir}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp)
    try:
        _build(tmp, p)
        _write(os.path.join(tmp, MARKER), json.dumps(p.marker(), sort_keys=True) + "\n")
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out_dir")
    ap.add_argument("--orgs", type=int, default=500)
    ap.add_argument("--integrations", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--secret-fraction", type=float, default=0.5)
    args = ap.parse_args(argv)
    import time

    t0 = time.perf_counter()
    try:
        wrote = generate(args.out_dir, args.orgs, args.integrations, args.seed, args.secret_fraction)
    except ValueError as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 2
    files = args.orgs * args.integrations + args.integrations
    if wrote:
        print(f"wrote {args.out_dir}: ~{files} documents in {time.perf_counter() - t0:.2f} s")
    else:
        print(f"{args.out_dir} is up to date (same parameters); nothing written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
