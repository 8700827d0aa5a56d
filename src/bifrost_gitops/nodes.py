"""The shape of a parsed YAML or JSON document: one name for every tree the tool reads.

Stdlib only and imports nothing, so the repository loader (no cryptography) and the sops
package (no pydantic) both use it for free. Mapping keys are always text: both readers refuse
or rewrite anything else. sops timestamps are ``str`` (``sops.Timestamp``).
"""

from __future__ import annotations

from typing import TypeAlias

Scalar: TypeAlias = str | int | float | bool | None
#: one value of a parsed document: a scalar, a list or a text-keyed mapping of values
Node: TypeAlias = "Scalar | list[Node] | dict[str, Node]"
#: a whole document (its top level is a mapping)
Tree: TypeAlias = dict[str, Node]
#: a JSON value (a bundle record, a deploy.json value, an API reply): the same shape as a node
Json: TypeAlias = Node
