#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build the tiny aarch64 test VM (Debian arm64 kernel + busybox-static initramfs, booted by
# GRUB under UEFI) into a cache directory, once.  See test/vm/README.md.
#
#   build-tiny-vm-arm64.sh [OUTDIR]   default: ${QWD_VM_ARM64_CACHE:-$HOME/.cache/qwd/tiny-vm-arm64}
#
# Produces OUTDIR/{vmlinuz,initrd.img,cmdline,tiny.iso,tiny.qcow2,stamp}.
# Inputs: this script, tiny-vm-common.sh (sourced) and three arm64 packages of Debian's mirror: the kernel
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
HOST_BUSYBOX=/bin/busybox   # only lists the applets: the arm64 one cannot run here

. "$(dirname -- "${BASH_SOURCE[0]}")/tiny-vm-common.sh"
tiny_start build-tiny-vm-arm64 "${1:-${QWD_VM_ARM64_CACHE:-$HOME/.cache/qwd/tiny-vm-arm64}}" \
    apt-cache apt-get dpkg-deb mformat
[ -x "$HOST_BUSYBOX" ] || die "$HOST_BUSYBOX missing (apt-get install busybox-static)"
apt_dir=$out.apt

# The fast path keys on the host's apt lists, as build-tiny-vm.sh does: when the host's
# lists change, the arm64 ones are refreshed too and the versions compared.
fast_key=$(printf '%s\n' "$self_sum" "$lists_fp" | sha256sum | cut -d' ' -f1)

if tiny_current fast "$fast_key"; then
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
kver=$(tiny_candidate "$policy" "$kpkg")
bver=$(tiny_candidate "$policy" busybox-static)
gver=$(tiny_candidate "$policy" grub-efi-arm64-bin)
for v in "$kver" "$bver" "$gver"; do
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then die "no $ARCH candidate for $kpkg, busybox-static or grub-efi-arm64-bin"; fi
done

inputs=$(printf '%s\n' "$self_sum" "$kpkg" "$kver" "$bver" "$gver" | sha256sum | cut -d' ' -f1)

write_stamp() { # DIR
    printf 'inputs=%s\nfast=%s\nkernel=%s %s\nbusybox=%s\ngrub=%s\n' \
        "$inputs" "$fast_key" "$kpkg" "$kver" "$bver" "$gver" > "$1/stamp.new"
    mv -f -- "$1/stamp.new" "$1/stamp"
}

if tiny_current inputs "$inputs"; then
    write_stamp "$out"
    log "up to date: $out"
    exit 0
fi

log "building into $out ($kpkg $kver, busybox $bver, grub $gver)"
tiny_build_dir

(cd "$tmp/dl" && apt-get -q "${apt_arm64[@]}" download "$kpkg=$kver" "busybox-static=$bver" \
    "grub-efi-arm64-bin=$gver" >/dev/null)
# Debian's arm64 kernel is a plain Image with an EFI stub: GRUB loads it as it is.
tiny_kernel "$kpkg"
dpkg-deb -x "$tmp"/dl/busybox-static_*.deb "$tmp/bx"
dpkg-deb -x "$tmp"/dl/grub-efi-arm64-bin_*.deb "$tmp/gx"

# --- initramfs ---------------------------------------------------------------
r=$tmp/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,lib/modules,var/log,var/run}
cp -- "$tmp/bx/bin/busybox" "$r/bin/busybox"
[ "$(head -c 20 "$r/bin/busybox" | od -An -tx1 -j18 -N2 | tr -d ' ')" = b700 ] ||
    die "busybox-static:$ARCH is not an aarch64 binary"
# The applet list of the host's busybox (same Debian source; the arm64 one cannot run here).
tiny_applets "$HOST_BUSYBOX"
# virtio-gpu-pci (video virtio): the kernel's DRM driver, loaded by /etc/rcS when the VM has
# that device, with what it depends on first (modinfo "depends=" of each module).
: > "$r/etc/modules.virtio-gpu"
add_module virtio_pci modules.virtio-gpu
add_module virtio_gpu modules.virtio-gpu

tiny_init qwd-tiny-arm64 ttyAMA0

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

tiny_initrd

# --- ISO (UEFI, hybrid: also boots as a disk) and qcow2 ----------------------
tiny_iso "QWD tiny VM (aarch64)" QWD_TINY_ARM64 -d "$tmp/gx/usr/lib/grub/arm64-efi"

write_stamp "$new"

tiny_swap_in
