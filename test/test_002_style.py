# SPDX-License-Identifier: Apache-2.0
"""One style for all C (.clang-format at the root, clang-format 16 for InsertBraces): the
tree as committed is what `make format` would leave; and the helper's files depend on each
other one way (docs/helper.md, "Inside the helper")."""
import glob
import os
import re
import subprocess

from qwdtest import env

CLANG_FORMAT = "clang-format-16"


def test_clang_format_leaves_every_c_file_unchanged():
    files = sorted(glob.glob(os.path.join(env.SRCDIR, "*", "*.[ch]"))
                   + glob.glob(os.path.join(env.SRCDIR, "test", "unit", "*.[ch]")))
    assert len(files) > 60
    result = subprocess.run([CLANG_FORMAT, "--dry-run", "--Werror", *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, "run `make format`:\n" + result.stderr[:4000]


def test_every_source_file_names_its_licence():
    """Apache-2.0 (LICENSE): an SPDX line near the top of every source and build file."""
    tracked = subprocess.run(["git", "ls-files"], cwd=env.SRCDIR, capture_output=True,
                             text=True).stdout.split()
    if not tracked:  # a release tarball: no git
        tracked = [os.path.relpath(p, env.SRCDIR) for p in glob.glob(
            os.path.join(env.SRCDIR, "**", "*"), recursive=True) if os.path.isfile(p)]
    sources = [p for p in tracked if not p.endswith((".md", ".png", ".json", "LICENSE", "NEWS",
                                                     ".gitignore"))
               and "/node_modules/" not in p
               # fuzz inputs are data a parser reads whole: a comment line would change them
               and not p.startswith("test/fuzz/corpus/")
               # formats without comments; debian/copyright is itself the licence statement
               and p not in ("debian/changelog", "debian/copyright", "debian/source/format")]
    assert len(sources) > 100
    missing = []
    for path in sources:
        with open(os.path.join(env.SRCDIR, path), errors="replace") as f:
            head = f.read(300)
        if "SPDX-License-Identifier: Apache-2.0" not in head:
            missing.append(path)
    assert not missing, f"files without the SPDX line: {missing}"
    assert os.path.exists(os.path.join(env.SRCDIR, "LICENSE"))


def helper_include_graph(srcdir):
    """Each part of the helper (helper_x.c and helper_x.h together) → the parts whose headers
    it includes."""
    graph = {}
    for path in glob.glob(os.path.join(srcdir, "support", "helper*.[ch]")):
        part = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            included = re.findall(r'^#include "(helper\w*)\.h"', f.read(), re.M)
        graph.setdefault(part, set()).update(p for p in included if p != part)
    return graph


def include_cycle(graph):
    """One cycle of graph as a list of parts (its first part repeated at the end), or None."""
    state = {}  # part → "open" while on the path, "done" once all below it is known

    def visit(part, path):
        state[part] = "open"
        for below in sorted(graph.get(part, ())):
            if state.get(below) == "open":
                return path[path.index(below):] + [below]
            if below not in state:
                cycle = visit(below, path + [below])
                if cycle:
                    return cycle
        state[part] = "done"
        return None
    for part in sorted(graph):
        if part not in state:
            cycle = visit(part, [part])
            if cycle:
                return cycle
    return None


def test_include_cycle_finds_a_circle_and_only_a_circle():
    assert include_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert include_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_helpers_files_include_each_other_one_way():
    """No part of support/ reaches back up: a part that needs to tell the one above it uses a
    hook that part gives it (helper_session.h, helper_backend.h)."""
    graph = helper_include_graph(env.SRCDIR)
    assert len(graph) > 15
    cycle = include_cycle(graph)
    assert cycle is None, "support/ includes in a circle: " + " -> ".join(cycle)
