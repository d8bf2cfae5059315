#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build the tiny aarch64 test VM (Debian arm64 kernel + busybox-static initramfs, booted by
# GRUB under UEFI) into a cache directory, once.  See test/vm/README.md.
#
#   build-tiny-vm-arm64.sh [OUTDIR]   default: ${QWD_VM_ARM64_CACHE:-$HOME/.cache/qwd/tiny-vm-arm64}
#
# Produces OUTDIR/{vmlinuz,initrd.img,cmdline,tiny.iso,tiny.qcow2,stamp}.
# Inputs: this script and three arm64 packages of Debian's mirror: the kernel
# linux-image-arm64 depends on, busybox-static and grub-efi-arm64-bin. They are fetched
# with apt-get download from arm64 package lists of their own (OUTDIR.apt/), without
# changing the host's architectures, and unpacked with dpkg-deb -x, never installed.
# A rerun with unchanged inputs is a no-op; a build happens in a temp dir next to OUTDIR
# and replaces OUTDIR only when complete (stamp written last).
set -euo pipefail

BANNER='QWD-TINY-VM READY'
# ttyAMA0: the virt machine's PL011 UART (QEMU's -serial). tty0: the framebuffer UEFI set
# up (ramfb, or virtio-gpu until the kernel's own driver takes over).
CMDLINE='quiet loglevel=3 console=tty0 console=ttyAMA0,115200'
ARCH=arm64
APT_LISTS=/var/lib/apt/lists
HOST_BUSYBOX=/bin/busybox   # only lists the applets: the arm64 one cannot run here

out=${1:-${QWD_VM_ARM64_CACHE:-$HOME/.cache/qwd/tiny-vm-arm64}}
out=${out%/}
parent=$(dirname -- "$out")
mkdir -p -- "$parent"
parent=$(cd -- "$parent" && pwd -P)
out=$parent/$(basename -- "$out")
apt_dir=$out.apt

log() { printf 'build-tiny-vm-arm64: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$HOST_BUSYBOX" ] || die "$HOST_BUSYBOX missing (apt-get install busybox-static)"
for t in apt-cache apt-get dpkg-deb cpio zstd grub-mkrescue xorriso mformat qemu-img flock sha256sum; do
    command -v "$t" >/dev/null || die "$t not found"
done

exec 9>"$out.lock"
flock 9

self_sum=$(sha256sum < "${BASH_SOURCE[0]}" | cut -d' ' -f1)
# The fast path keys on the host's apt lists, as build-tiny-vm.sh does: when the host's
# lists change, the arm64 ones are refreshed too and the versions compared.
lists_fp=$( (stat -c '%n %s %Y' "$APT_LISTS"/*Packages* 2>/dev/null || true) | sha256sum | cut -d' ' -f1)
fast_key=$(printf '%s\n' "$self_sum" "$lists_fp" | sha256sum | cut -d' ' -f1)

stamp_get() { sed -n "s/^$1=//p" "$out/stamp" 2>/dev/null | head -n1; }
complete() {
    local f
    for f in vmlinuz initrd.img cmdline tiny.iso tiny.qcow2 stamp; do
        [ -s "$out/$f" ] || return 1
    done
}

if complete && [ "$(stamp_get fast)" = "$fast_key" ]; then
    log "up to date: $out"
    exit 0
fi

# arm64 package lists of our own: the host's dpkg status and architectures stay untouched.
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
apt_arm64=(-o "APT::Architecture=$ARCH" -o "APT::Architectures=$ARCH"
           -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
           -o "Dir::State::status=/dev/null")
[ "$(id -u)" = 0 ] && apt_arm64+=(-o APT::Sandbox::User=root)
apt-get -q "${apt_arm64[@]}" update >/dev/null || die "apt-get update for $ARCH failed"

kpkg=$(apt-cache "${apt_arm64[@]}" depends linux-image-$ARCH 2>/dev/null |
       sed -n "s/^ *Depends: \(linux-image-[0-9][^ ]*-$ARCH\)\$/\1/p" | head -n1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-$ARCH"
policy=$(LC_ALL=C apt-cache "${apt_arm64[@]}" policy "$kpkg" busybox-static grub-efi-arm64-bin)
candidate() { # PKG
    printf '%s\n' "$policy" | awk -v p="$1:" '/^[^ ]/ { cur = $1 } cur == p && $1 == "Candidate:" { print $2; exit }'
}
kver=$(candidate "$kpkg"); bver=$(candidate busybox-static); gver=$(candidate grub-efi-arm64-bin)
for v in "$kver" "$bver" "$gver"; do
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then die "no $ARCH candidate for $kpkg, busybox-static or grub-efi-arm64-bin"; fi
done

inputs=$(printf '%s\n' "$self_sum" "$kpkg" "$kver" "$bver" "$gver" | sha256sum | cut -d' ' -f1)

write_stamp() { # DIR
    printf 'inputs=%s\nfast=%s\nkernel=%s %s\nbusybox=%s\ngrub=%s\n' \
        "$inputs" "$fast_key" "$kpkg" "$kver" "$bver" "$gver" > "$1/stamp.new"
    mv -f -- "$1/stamp.new" "$1/stamp"
}

if complete && [ "$(stamp_get inputs)" = "$inputs" ]; then
    write_stamp "$out"
    log "up to date: $out"
    exit 0
fi

log "building into $out ($kpkg $kver, busybox $bver, grub $gver)"
name=$(basename -- "$out")
rm -rf -- "$parent/.$name.build."*
tmp=$(mktemp -d "$parent/.$name.build.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
new=$tmp/out
mkdir -p "$new" "$tmp/dl"

(cd "$tmp/dl" && apt-get -q "${apt_arm64[@]}" download "$kpkg=$kver" "busybox-static=$bver" \
    "grub-efi-arm64-bin=$gver" >/dev/null)
dpkg-deb -x "$tmp"/dl/"$kpkg"_*.deb "$tmp/kx"
dpkg-deb -x "$tmp"/dl/busybox-static_*.deb "$tmp/bx"
dpkg-deb -x "$tmp"/dl/grub-efi-arm64-bin_*.deb "$tmp/gx"
# Debian's arm64 kernel is a plain Image with an EFI stub: GRUB loads it as it is.
cp -- "$(ls "$tmp"/kx/boot/vmlinuz-*)" "$new/vmlinuz"
printf '%s\n' "$CMDLINE" > "$new/cmdline"

# --- initramfs ---------------------------------------------------------------
r=$tmp/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,lib/modules,var/log,var/run}
cp -- "$tmp/bx/bin/busybox" "$r/bin/busybox"
[ "$(head -c 20 "$r/bin/busybox" | od -An -tx1 -j18 -N2 | tr -d ' ')" = b700 ] ||
    die "busybox-static:$ARCH is not an aarch64 binary"
# The applet list of the host's busybox (same Debian source; the arm64 one cannot run here).
"$HOST_BUSYBOX" --list-full | while IFS= read -r a; do
    [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
done
# virtio-gpu-pci (video virtio): the kernel's DRM driver, loaded by /etc/rcS when the VM has
# that device, with what it depends on first (modinfo "depends=" of each module).
kmod_dir=$(ls -d "$tmp"/kx/lib/modules/*/ | head -n1)
kmod_dir=${kmod_dir%/}
: > "$r/etc/modules.virtio-gpu"
add_module() { # NAME
    local name=$1 f d
    grep -qx -- "$name" "$r/etc/modules.virtio-gpu" && return 0
    f=$(find "$kmod_dir/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n1 || true)
    if [ -z "$f" ]; then
        grep -qE "/(${name}|${name//_/-})\.ko\$" "$kmod_dir/modules.builtin" 2>/dev/null && return 0
        die "kernel module $name not found in $kpkg"
    fi
    for d in $(tr '\0' '\n' < "$f" | sed -n 's/^depends=//p' | head -n1 | tr , ' '); do
        add_module "$d"
    done
    cp -- "$f" "$r/lib/modules/$name.ko"
    echo "$name" >> "$r/etc/modules.virtio-gpu"
}
add_module virtio_pci
add_module virtio_gpu

cat > "$r/init" <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname qwd-tiny-arm64
exec /sbin/init
EOF
chmod 755 "$r/init"

cat > "$r/etc/inittab" <<'EOF'
::sysinit:/etc/rcS
ttyAMA0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot -f
EOF

cat > "$r/etc/rcS" <<'EOF'
#!/bin/sh
# virtio-gpu-pci (1af4:1050): load its driver, which takes the console over from the UEFI
# framebuffer. Without it nothing is loaded.
for d in /sys/bus/pci/devices/*; do
    read -r v < "$d/vendor" && read -r i < "$d/device" || continue
    [ "$v:$i" = 0x1af4:0x1050 ] || continue
    while read -r m; do
        insmod "/lib/modules/$m.ko" 2>/dev/null
    done < /etc/modules.virtio-gpu
    break
done
exit 0
EOF
chmod 755 "$r/etc/rcS"

cat > "$r/etc/profile" <<EOF
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
export PS1='qwd# '
cd /root
echo '$BANNER'
EOF

(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | zstd -q -19 -c > "$new/initrd.img"

# --- ISO (UEFI, hybrid: also boots as a disk) and qcow2 ----------------------
iso=$tmp/iso
mkdir -p "$iso/boot/grub"
cp -- "$new/vmlinuz" "$new/initrd.img" "$iso/boot/"
cat > "$iso/boot/grub/grub.cfg" <<EOF
set timeout=0
set timeout_style=hidden
menuentry "QWD tiny VM (aarch64)" {
    linux /boot/vmlinuz $CMDLINE
    initrd /boot/initrd.img
}
EOF
grub-mkrescue -d "$tmp/gx/usr/lib/grub/arm64-efi" -o "$new/tiny.iso" --locales= --fonts= \
    --themes= "$iso" -- -volid QWD_TINY_ARM64 >"$tmp/grub-mkrescue.log" 2>&1 ||
    { cat "$tmp/grub-mkrescue.log" >&2; die "grub-mkrescue failed"; }
qemu-img convert -q -f raw -O qcow2 "$new/tiny.iso" "$new/tiny.qcow2"

write_stamp "$new"

old=
if [ -e "$out" ] || [ -L "$out" ]; then
    old=$tmp/previous
    mv -T -- "$out" "$old"
fi
mv -T -- "$new" "$out"
log "done: $(du -sh "$out" | cut -f1) in $out"
