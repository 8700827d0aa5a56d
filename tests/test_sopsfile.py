"""sopsfile: the one home that rewrites a sops file in place (`secrets set`, `secrets updatekeys`).

Real files in a temp folder: what stays (comments, mode), what a rewrite that cannot be spliced
keeps (the leading comment lines), JSON as sops writes it, and an unreadable file as an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bifrost_gitops import sopsfile
from bifrost_gitops.sops import SopsError


def test_a_change_that_cannot_be_spliced_keeps_the_leading_comments(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"# yaml-language-server: $schema=x.json\r\n# the org\r\n{a: 1, b: 2}\r\n")
    os.chmod(path, 0o640)
    source = sopsfile.read(str(path))
    tree = source.tree()
    del tree["a"]  # a removed key (in a flow mapping): the text is written anew

    sopsfile.write(str(path), sopsfile.new_text(source, tree, 2))

    assert path.read_text() == "# yaml-language-server: $schema=x.json\n# the org\nb: 2\n"
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_spliced_change_keeps_every_other_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("# head\na: 1  # one\n\n# between\nb: 2\n")
    source = sopsfile.read(str(path))

    text = sopsfile.new_text(source, {**source.tree(), "b": 3}, 4)

    assert text == "# head\na: 1  # one\n\n# between\nb: 3\n"


def test_json_is_written_the_way_sops_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"a": 1}')
    source = sopsfile.read(str(path))

    text = sopsfile.new_text(source, {**source.tree(), "b": "x"}, 4)

    assert text == '{\n\t"a": 1,\n\t"b": "x"\n}\n' and json.loads(text) == {"a": 1, "b": "x"}


def test_a_file_that_cannot_be_read_is_a_sops_error(tmp_path: Path) -> None:
    with pytest.raises(SopsError, match="cannot read the file"):
        sopsfile.read(str(tmp_path / "missing.yaml"))
