# SPDX-License-Identifier: Apache-2.0
"""Every directive and every helper key is documented, with its default: the docs are read
against the sources, so a new directive or key without documentation fails the suite."""
import os
import re

from qwdtest import env


def read(*parts):
    with open(os.path.join(env.SRCDIR, *parts)) as f:
        return f.read()


CONFIG_TABLES = ("QWD_DIR_CONFIG", "QWD_SERVER_CONFIG")
DIRECTIVE_COLUMNS = ("type", "field", "default", "merge", "name", "how", "handler", "context",
                     "anchor", "help")
FIELD_COLUMNS = ("type", "field", "default", "merge", "anchor")
MERGE_RULES = {"OVERRIDE", "REPLACE"}


def macro_arguments(text):
    """The top-level arguments of a macro call's text (after its opening parenthesis), up to
    the closing one; quoted strings may hold commas and parentheses."""
    args, depth, current, i = [], 0, "", 0
    while True:
        c = text[i]
        if c == '"':
            end = i + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            current += text[i:end + 1]
            i = end + 1
            continue
        if c in "(":
            depth += 1
        elif c == ")":
            if depth == 0:
                args.append(current.strip())
                return args, i + 1
            depth -= 1
        elif c == "," and depth == 0:
            args.append(current.strip())
            current = ""
            i += 1
            continue
        current += c
        i += 1


def c_string(arg):
    """The value of a C string literal (adjacent literals joined), or None for another
    expression."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', arg)
    if not parts or re.sub(r'"(?:[^"\\]|\\.)*"', "", arg).strip():
        return None
    return "".join(parts)


def config_rows():
    """Every row of the module's config tables (qwd_config.h): a dict of its columns, with
    "table", and "kind" DIRECTIVE or FIELD."""
    header = read("mod_qwd", "qwd_config.h")
    rows = []
    for table in CONFIG_TABLES:
        match = re.search(rf"^#define {table}\(DIRECTIVE, FIELD\)((?:.*\\\n)*.*)$", header, re.M)
        assert match, f"no table {table} in qwd_config.h"
        body = match.group(1).replace("\\\n", " ")
        for call in re.finditer(r"\b(DIRECTIVE|FIELD)\(", body):
            args, _ = macro_arguments(body[call.end():])
            columns = DIRECTIVE_COLUMNS if call.group(1) == "DIRECTIVE" else FIELD_COLUMNS
            assert len(args) == len(columns), f"{table}: {call.group(1)}({', '.join(args)}) " \
                f"has {len(args)} columns, not {len(columns)} ({', '.join(columns)})"
            row = dict(zip(columns, args), table=table, kind=call.group(1))
            rows.append(row)
    return rows


def heading_slug(title):
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def directive_docs():
    """docs/directives.md by section: {anchor: (title, text)}."""
    docs = read("docs", "directives.md")
    return {heading_slug(title): (title, text) for title, text in
            re.findall(r"^#{2,3} ([^\n]+)\n(.*?)(?=^#{2,3} |\Z)", docs, re.M | re.S)}


def documented_default(name, anchor, sections):
    """The Default cell of a directive: in a section of its own (## or ###) with Syntax,
    Default and Description rows, or in a row naming it in a grouped table (limits,
    defaults)."""
    assert anchor in sections, f"{name}: no section #{anchor} in docs/directives.md"
    title, text = sections[anchor]
    if title == name:
        for field in ("Syntax", "Default", "Description"):
            assert f"| {field} |" in text, f"{name}: no {field} row"
        return re.search(r"^\| Default \|(.*)\|\s*$", text, re.M).group(1).strip()
    rows = dict(re.findall(rf"^\| `({name})(?: [^`]*)?` \|(.*)\|\s*$", text, re.M))
    assert name in rows, f"{name} is not documented in section #{anchor} of docs/directives.md"
    default, description = [c.strip() for c in rows[name].split("|")][:2]
    assert description, f"{name}: its table row lacks a meaning"
    return default


def default_is_documented(row, documented):
    """Whether the documented default says the table's: the number, the string, on/off of a
    flag, the word of an enum constant (QWD_AUTH_FORM: form); NULL: any stated default."""
    value = row["default"]
    if value == "NULL":
        return bool(documented)
    if c_string(value) is not None:
        return c_string(value) in documented
    if row["type"] == "FLAG":
        return {"0": "off", "1": "on"}[value] in documented.lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d.])", documented) is not None
    if re.fullmatch(r"QWD_[A-Z]+_[A-Z]+", value):
        return value.rsplit("_", 1)[1].lower() in documented.lower()
    return False


def test_every_directive_has_documentation_default_and_merge_rule():
    """The config tables of qwd_config.h are the only place directives are declared; each of
    their rows has a merge rule and a default, and each directive is documented with that
    default in the section of docs/directives.md its row names."""
    rows = config_rows()
    directives = [row for row in rows if row["kind"] == "DIRECTIVE"]
    assert len(directives) > 30
    for source_path, text in c_sources("mod_qwd"):
        declared = re.findall(r'AP_INIT_\w+\(\s*"', text)
        assert not declared, f"{source_path}: a directive outside the tables of qwd_config.h"
    names = [c_string(row["name"]) for row in directives]
    assert len(set(names)) == len(names), "a directive named twice"
    sections = directive_docs()
    for row in rows:
        what = c_string(row.get("name", "")) or row["field"]
        assert row["merge"] in MERGE_RULES, f"{what}: merge rule {row['merge']!r}"
        assert (row["type"] == "LIST") == (row["merge"] == "REPLACE"), \
            f"{what}: lists are replaced as a whole (REPLACE), single values OVERRIDE"
        assert row["default"], f"{what}: no default"
        assert c_string(row["anchor"]) in sections, \
            f"{what}: no section #{c_string(row['anchor'])} in docs/directives.md"
    for row, name in zip(directives, names):
        assert c_string(row["help"]), f"{name}: no help text"
        documented = documented_default(name, c_string(row["anchor"]), sections)
        assert default_is_documented(row, documented), \
            f"{name}: docs/directives.md gives the default {documented!r}, the table {row['default']}"
    documented_names = set(re.findall(r"^#{2,3} (Qwd\w+)$", read("docs", "directives.md"), re.M))
    documented_names |= set(re.findall(r"^\| `(Qwd\w+)", read("docs", "directives.md"), re.M))
    assert documented_names <= set(names), \
        f"docs/directives.md documents directives that do not exist: {documented_names - set(names)}"


def test_fields_with_a_default_are_read_through_their_getters():
    """qwd_cfg_FIELD(cfg) applies the default; a raw cfg->FIELD read of a field that has one
    would skip it. (Fields without a default may be read either way.)"""
    with_default = {row["field"] for row in config_rows() if row["default"] != "NULL"}
    raw = []
    for path, text in c_sources("mod_qwd"):
        if path.startswith("mod_qwd/qwd_config."):
            continue
        for field in re.findall(r"\bcfg->(\w+)", text):
            if field in with_default:
                raw.append(f"{path}: cfg->{field}")
    assert not raw, "read these through qwd_cfg_FIELD(cfg): " + ", ".join(raw)


def helper_keys():
    """(name, default) of every KEY(name, type, default) of support/helper_config.c, the
    default resolved through lib/qwd_protocol.h where it names a constant."""
    source = read("support", "helper_config.c")
    constants = dict(re.findall(r'#define (QWD_\w+)\s+"([^"]*)"', read("lib", "qwd_protocol.h")))
    keys = []
    for call in re.finditer(r"^\s*KEY\(", source, re.M):
        args, _ = macro_arguments(source[call.end():])
        assert len(args) >= 3, f"KEY({', '.join(args)}) lacks a default (NULL: unset)"
        default = args[2]
        keys.append((args[0], c_string(default) if c_string(default) is not None
                     else constants.get(default, default)))
    return keys


def test_every_helper_key_is_documented_with_its_default():
    """Each key of the helper's table has a row in docs/helper.md whose default cell says
    the table's default (or, for NULL, what an unset key means). The helper reads one file
    and --set overrides, so its keys have no merge rule."""
    keys = helper_keys()
    assert len(keys) > 20
    rows = dict(re.findall(r"^\| `(\w+)` \|([^|]*)\|", read("docs", "helper.md"), re.M))
    undocumented = [key for key, _ in keys if key not in rows]
    assert not undocumented, f"helper keys missing from docs/helper.md: {undocumented}"
    for key, default in keys:
        documented = rows[key].strip()
        assert documented, f"{key}: docs/helper.md gives no default"
        if default != "NULL":
            assert default in documented, \
                f"{key}: docs/helper.md gives the default {documented!r}, the table {default!r}"


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
    # the ranges docs/log-numbers.md gives: the module's and the helper's
    ranges = {"mod_qwd/": range(101, 5000), "support/": range(5001, 6000)}
    outside = [f"QWD{n} ({paths[0]})" for n, paths in used.items()
               for folder, allowed in ranges.items()
               if paths[0].startswith(folder) and int(n) not in allowed]
    assert not outside, f"log numbers outside their program's range: {outside}"


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
    """Every op, error code, state, boot kind, end reason, setup state and limit of
    lib/qwd_protocol.h is in docs/protocol.md, and the C sources use the names, never the words
    themselves."""
    docs = read("docs", "protocol.md")
    words = {}
    for prefix in ("ERR", "STATE", "BOOT", "END", "SETUP", "LIMIT"):
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
