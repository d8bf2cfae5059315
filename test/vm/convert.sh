#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# convert.sh SRC FORMAT DEST -- convert a disk image with qemu-img (source format auto-detected).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SRC FORMAT DEST  (FORMAT: raw vmdk vdi vhdx vpc qcow2)" >&2; exit 2; }
case $2 in
    raw|vmdk|vdi|vhdx|vpc|qcow2) exec qemu-img convert -q -O "$2" "$1" "$3" ;;
    *) echo "$0: unsupported format '$2' (supported: raw vmdk vdi vhdx vpc qcow2)" >&2; exit 2 ;;
esac
