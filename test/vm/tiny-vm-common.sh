# SPDX-License-Identifier: Apache-2.0
# What the two tiny VM builds share, sourced by build-tiny-vm.sh (x86_64) and
# build-tiny-vm-arm64.sh: the cache directory, its lock and stamp, the temp build directory,
# the kernel, the initramfs's common files, the ISO and the swap into place. See README.md.
# Editing this file rebuilds both VMs (it is part of each one's self_sum).
# shellcheck shell=bash

log() { printf '%s: %s\n' "$tiny_name" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# tiny_start NAME OUTDIR TOOL...: names the build in its messages, resolves OUTDIR to an
# absolute path (out, and its parent), checks that the tools the build needs are there, takes
# the lock (one builder at a time per cache directory), and sets self_sum (the calling script
# and this file) and lists_fp (the host's apt lists).
tiny_start() {
    tiny_name=$1
    out=${2%/}
    shift 2
    parent=$(dirname -- "$out")
    mkdir -p -- "$parent"
    parent=$(cd -- "$parent" && pwd -P)
    out=$parent/$(basename -- "$out")
    local t
    for t in "$@" cpio zstd grub-mkrescue xorriso qemu-img flock sha256sum; do
        command -v "$t" >/dev/null || die "$t not found"
    done
    exec 9>"$out.lock"
    flock 9
    self_sum=$(cat -- "${BASH_SOURCE[1]}" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
    # apt-cache takes ~1 s per call here (no pkgcache), so the fast path keys on the apt
    # lists instead: the packages' candidates can only change when they change.
    lists_fp=$( (stat -c '%n %s %Y' /var/lib/apt/lists/*Packages* 2>/dev/null || true) |
        sha256sum | cut -d' ' -f1)
}

stamp_get() { sed -n "s/^$1=//p" "$out/stamp" 2>/dev/null | head -n1; }

# tiny_current KEY VALUE: whether the cache has every file and its stamp says KEY=VALUE.
tiny_current() {
    local f
    for f in vmlinuz initrd.img cmdline tiny.iso tiny.qcow2 stamp; do
        [ -s "$out/$f" ] || return 1
    done
    [ "$(stamp_get "$1")" = "$2" ]
}

# tiny_candidate POLICY PKG: PKG's candidate version in apt-cache policy's output.
tiny_candidate() {
    printf '%s\n' "$1" | awk -v p="$2:" '/^[^ ]/ { cur = $1 } cur == p && $1 == "Candidate:" { print $2; exit }'
}

# tiny_build_dir: the temp directory next to OUTDIR the build happens in (tmp, removed on
# exit), with new (the cache being built) and dl (the packages); a killed build's leftovers
# go first (we hold the lock).
tiny_build_dir() {
    local name
    name=$(basename -- "$out")
    rm -rf -- "$parent/.$name.build."*
    tmp=$(mktemp -d "$parent/.$name.build.XXXXXX")
    trap 'rm -rf -- "$tmp"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM HUP
    new=$tmp/out
    mkdir -p "$new" "$tmp/dl"
}

# tiny_kernel KPKG: unpacks the kernel package downloaded into dl (kx, and its modules'
# directory kmod_dir), and puts the kernel and CMDLINE into the new cache.
tiny_kernel() {
    dpkg-deb -x "$tmp"/dl/"$1"_*.deb "$tmp/kx"
    cp -- "$(ls "$tmp"/kx/boot/vmlinuz-*)" "$new/vmlinuz"
    printf '%s\n' "$CMDLINE" > "$new/cmdline"
    kmod_dir=$(ls -d "$tmp"/kx/lib/modules/*/ | head -n1)
    kmod_dir=${kmod_dir%/}
}

# tiny_applets BUSYBOX: a link to /bin/busybox in the root (r) for each applet BUSYBOX lists.
tiny_applets() {
    "$1" --list-full | while IFS= read -r a; do
        [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
    done
}

# add_module NAME LIST [optional]: the kernel module NAME into the root's /lib/modules and its
# name at the end of /etc/LIST, after the modules it depends on (modinfo "depends="). One built
# into the kernel needs nothing; a missing one fails the build unless optional.
add_module() {
    local name=$1 list=$2 f d
    grep -qx -- "$name" "$r"/etc/modules* && return 0
    f=$(find "$kmod_dir/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n1 || true)
    if [ -z "$f" ]; then
        grep -qE "/(${name}|${name//_/-})\.ko\$" "$kmod_dir/modules.builtin" 2>/dev/null && return 0
        [ "${3:-}" = optional ] && return 0
        die "kernel module $name not found in $kpkg"
    fi
    for d in $(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -n1 | tr , ' '); do
        add_module "$d" "$list"
    done
    cp -- "$f" "$r/lib/modules/$name.ko"
    echo "$name" >> "$r/etc/$list"
}

# tiny_init HOSTNAME SERIAL: the root's /init, and busybox init's inittab: /etc/rcS (the
# caller's) once, then respawning shells on the serial port SERIAL and the VGA console.
tiny_init() {
    cat > "$r/init" <<EOF
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname $1
exec /sbin/init
EOF
    chmod 755 "$r/init"
    cat > "$r/etc/inittab" <<EOF
::sysinit:/etc/rcS
$2::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot -f
EOF
}

# tiny_initrd: the root's /etc/profile, then the root packed into the new cache's initrd.img.
# Login shells print the banner on their own tty once they hold it open, so input sent after
# the banner is seen is never lost. zstd, not gzip: with qemu-ga and its libraries the x86_64
# cpio is ~8.5 MB; zstd -19 makes 2.9 MB (gzip -9: 3.8 MB), and under TCG the kernel unpacks
# it ~0.3 s sooner (measured).
tiny_initrd() {
    cat > "$r/etc/profile" <<EOF
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
export PS1='qwd# '
cd /root
echo '$BANNER'
EOF
    (cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
        zstd -q -19 -c > "$new/initrd.img"
}

# tiny_iso TITLE VOLID [GRUB-MKRESCUE OPTION...]: the hybrid ISO (also boots as a disk), GRUB
# booting the new kernel and initrd with CMDLINE at once, and its qcow2 copy.
tiny_iso() {
    local title=$1 volid=$2 iso=$tmp/iso
    shift 2
    mkdir -p "$iso/boot/grub"
    cp -- "$new/vmlinuz" "$new/initrd.img" "$iso/boot/"
    cat > "$iso/boot/grub/grub.cfg" <<EOF
set timeout=0
set timeout_style=hidden
menuentry "$title" {
    linux /boot/vmlinuz $CMDLINE
    initrd /boot/initrd.img
}
EOF
    grub-mkrescue "$@" -o "$new/tiny.iso" --locales= --fonts= --themes= "$iso" \
        -- -volid "$volid" >"$tmp/grub-mkrescue.log" 2>&1 ||
        { cat "$tmp/grub-mkrescue.log" >&2; die "grub-mkrescue failed"; }
    qemu-img convert -q -f raw -O qcow2 "$new/tiny.iso" "$new/tiny.qcow2"
}

# tiny_swap_in: the new cache (its stamp written last) replaces OUTDIR; the old one goes
# with tmp.
tiny_swap_in() {
    if [ -e "$out" ] || [ -L "$out" ]; then
        mv -T -- "$out" "$tmp/previous"
    fi
    mv -T -- "$new" "$out"
    log "done: $(du -sh "$out" | cut -f1) in $out"
}
