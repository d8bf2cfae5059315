# SPDX-License-Identifier: Apache-2.0
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


def c_sources(*dirs):
    for folder in dirs:
        for name in sorted(os.listdir(os.path.join(env.SRCDIR, folder))):
            if name.endswith((".c", ".h")):
                yield f"{folder}/{name}", read(folder, name)


def test_log_numbers_are_registered_unique_and_used():
    """docs/log-numbers.md lists each QWDLOGNO of the sources once; each is used at one place."""
    registry = re.findall(r"^\| QWD(\d{5}) \| (\S+) \|", read("docs", "log-numbers.md"), re.M)
    registered = [number for number, _ in registry]
    twice = sorted({n for n in registered if registered.count(n) > 1})
    assert not twice, f"listed twice in docs/log-numbers.md: {twice}"
    used = {}
    for path, text in c_sources("mod_qwd", "support", "lib"):
        for number in re.findall(r"QWDLOGNO\((\d{5})\)", text):
            used.setdefault(number, []).append(path)
    assert len(used) > 150
    reused = {n: paths for n, paths in used.items() if len(paths) > 1}
    assert not reused, f"log numbers used at more than one place: {reused}"
    unregistered = sorted(set(used) - set(registered))
    assert not unregistered, f"log numbers missing from docs/log-numbers.md: {unregistered}"
    unused = sorted(set(registered) - set(used))
    assert not unused, f"docs/log-numbers.md lists numbers no source uses: {unused}"
    wrong_file = [f"QWD{n} ({where} vs {used[n][0]})" for n, where in registry
                  if not used[n][0].endswith("/" + where)]
    assert not wrong_file, f"docs/log-numbers.md names the wrong source: {wrong_file}"


def test_every_warning_and_error_line_has_a_log_number():
    """A warning or error the module or the helper logs carries its number: the helper's every
    line (helper_log_*), the module's ap_log_* calls from APLOG_WARNING up."""
    missing = []
    for path, text in c_sources("support"):
        if path.endswith(".h"):
            continue  # helper_log.h defines them
        for call in re.finditer(r"\b(helper_log_(?:info|warn|error)|die)\(\s*([^,)]*)", text):
            if path.endswith("helper_main.c") and call.group(2).startswith("const char"):
                continue  # die's own definition
            if not call.group(2).startswith("QWDLOGNO("):
                missing.append(f"{path}: {call.group(0)}")
    for path, text in c_sources("mod_qwd"):
        for call in re.finditer(r"ap_log_(?:r|p)?error\(APLOG_MARK,\s*(APLOG_\w+)[^\"]*?(\"|QWDLOGNO|%s|\w+->logno|logno)",
                                text, re.S):
            level, start = call.groups()
            if level in ("APLOG_EMERG", "APLOG_ALERT", "APLOG_CRIT", "APLOG_ERR",
                         "APLOG_WARNING") and start == '"':
                missing.append(f"{path}: {call.group(0)[:60]}")
    assert not missing, "lines without a QWDLOGNO: " + "; ".join(missing)


def protocol_defines(prefix):
    return dict(re.findall(rf'#define (QWD_{prefix}_\w+)\s+"([^"]+)"', read("lib", "qwd_protocol.h")))


def test_the_protocols_words_are_documented_and_spelled_once():
    """Every op, error code, state, boot kind and end reason of lib/qwd_protocol.h is in
    docs/protocol.md, and the C sources use the names, never the words themselves."""
    docs = read("docs", "protocol.md")
    words = {}
    for prefix in ("ERR", "STATE", "BOOT", "END"):
        words.update(protocol_defines(prefix))
    client_side = {"QWD_ERR_UNREACHABLE", "QWD_ERR_PROTOCOL"}
    assert len(words) > 20
    undocumented = [w for name, w in words.items()
                    if name not in client_side and f"`{w}`" not in docs]
    assert not undocumented, f"protocol words missing from docs/protocol.md: {undocumented}"
    spelled = []
    values = {protocol_defines("STATE")[k] for k in ("QWD_STATE_STARTING", "QWD_STATE_RUNNING")}
    values |= set(protocol_defines("BOOT").values())
    values |= {v for k, v in protocol_defines("END").items() if k != "QWD_END_STOPPED"}
    for path, text in c_sources("mod_qwd", "support", "lib"):
        if path == "lib/qwd_protocol.h":
            continue
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        for word in values:
            if f'"{word}"' in code:
                spelled.append(f"{path}: \"{word}\"")
    assert not spelled, "write the qwd_protocol.h names instead: " + ", ".join(spelled)
