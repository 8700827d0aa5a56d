"""Native SOPS (age) for bifrost-gitops: decrypt, verify, encrypt sops YAML/JSON documents.

Reads and writes exactly what sops 3.x reads and writes (the sops 3.x file format: ENC values, MAC, age and Shamir key groups),
without a subprocess per file; files no native age key opens go to the ``sops`` binary.
"""

from __future__ import annotations

from ..sopsmeta import age_recipients, recipients
from .document import VERSION, decrypt_document, decrypt_file, encrypt_document
from .errors import IntegrityError, NoKeyError, SopsError
from .gotypes import Timestamp
from .keys import Keyring, default_keyring, find_identities, make_keyring, parse_identities
from .secret import Secret, reveal
from .store import dump_json, dump_yaml, dumps, load_file, loads

__all__ = [
    "VERSION",
    "IntegrityError",
    "Keyring",
    "NoKeyError",
    "Secret",
    "SopsError",
    "Timestamp",
    "age_recipients",
    "decrypt_document",
    "decrypt_file",
    "default_keyring",
    "dump_json",
    "dump_yaml",
    "dumps",
    "encrypt_document",
    "find_identities",
    "load_file",
    "loads",
    "make_keyring",
    "parse_identities",
    "recipients",
    "reveal",
]
