# SPDX-License-Identifier: Apache-2.0
"""Which files of a stack other local users can read: a file whose mode lets others read it,
or a directory others may enter, below directories that all let them through."""
import os
import stat


def _others_may(mode, bits):
    return bool(mode & bits)


def paths_open_to_others(root):
    """Every path below root (root included) that a user who is neither its owner nor in its
    group can read or enter."""
    found = []

    def visit(path, reachable):
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            return
        is_dir = stat.S_ISDIR(info.st_mode)
        if reachable and _others_may(info.st_mode, stat.S_IRWXO):
            found.append(path)
        if is_dir:
            through = reachable and _others_may(info.st_mode, stat.S_IXOTH)
            for name in sorted(os.listdir(path)):
                visit(os.path.join(path, name), through)
    visit(root, True)
    return found


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)
