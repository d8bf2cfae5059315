"""Every directive and every helper key is documented, with its default: the docs are read
against the sources, so a new directive or key without documentation fails the suite."""
import os
import re

from qwdtest import env


def read(*parts):
    with open(os.path.join(env.SRCDIR, *parts)) as f:
        return f.read()


def module_directives():
    names = set()
    for name in os.listdir(os.path.join(env.SRCDIR, "mod_qwd")):
        if name.endswith(".c"):
            names.update(re.findall(r'AP_INIT_\w+\(\s*"(Qwd\w+)"', read("mod_qwd", name)))
    return names


def test_every_directive_has_syntax_default_and_description():
    """Either a section of its own (## or ###) with Syntax, Default and Description rows, or
    a row naming it with its default and meaning in a grouped table (limits, defaults)."""
    docs = read("docs", "directives.md")
    sections = dict(re.findall(r"^#{2,3} (\S+)\n(.*?)(?=^#{2,3} |\Z)", docs, re.M | re.S))
    table_rows = {name: cells for name, cells in
                  re.findall(r"^\| `(Qwd\w+)[^`]*` \|(.*)\|\s*$", docs, re.M)}
    directives = module_directives()
    assert len(directives) > 20
    for name in sorted(directives):
        if name in sections:
            for field in ("Syntax", "Default", "Description"):
                assert f"| {field} |" in sections[name], f"{name}: no {field} row"
        else:
            assert name in table_rows, f"{name} is not documented in docs/directives.md"
            default, description = [c.strip() for c in table_rows[name].split("|")][:2]
            assert default and description, f"{name}: its table row lacks a default"


def test_every_helper_key_is_documented():
    keys = re.findall(r"^\s*KEY\((\w+),", read("support", "helper_config.c"), re.M)
    assert len(keys) > 20
    docs = read("docs", "helper.md")
    undocumented = [key for key in keys if f"`{key}`" not in docs]
    assert not undocumented, f"helper keys missing from docs/helper.md: {undocumented}"


def test_every_protocol_op_is_documented():
    header = read("lib", "qwd_protocol.h")
    ops = re.findall(r'#define QWD_OP_\w+\s+"(\w+)"', header)
    assert "start" in ops and "machines" in ops
    docs = read("docs", "protocol.md")
    undocumented = [op for op in ops if f"### `{op}`" not in docs]
    assert not undocumented, f"ops missing from docs/protocol.md: {undocumented}"
