# SPDX-License-Identifier: Apache-2.0
"""One style for all C (.clang-format at the root, clang-format 16 for InsertBraces): the
tree as committed is what `make format` would leave."""
import glob
import os
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
