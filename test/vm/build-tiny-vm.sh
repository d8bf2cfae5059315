#!/bin/bash
# Build the tiny test VM (Debian kernel + busybox-static initramfs) into a
# cache directory, once.  See test/vm/README.md.
#
#   build-tiny-vm.sh [OUTDIR]     default: ${QWD_VM_CACHE:-$HOME/.cache/qwd/tiny-vm}
#
# Produces OUTDIR/{vmlinuz,initrd.img,cmdline,tiny.iso,tiny.qcow2,stamp}.
# Inputs: this script, the kernel package linux-image-amd64 depends on (fetched
# with apt-get download, never installed), the host's busybox-static.
# A rerun with unchanged inputs is a no-op; a build happens in a temp dir next
# to OUTDIR and replaces OUTDIR only when complete (stamp written last).
set -euo pipefail

BANNER='QWD-TINY-VM READY'
CMDLINE='quiet loglevel=3 console=tty0 console=ttyS0,115200'
BUSYBOX=/bin/busybox
APT_LISTS=/var/lib/apt/lists

out=${1:-${QWD_VM_CACHE:-$HOME/.cache/qwd/tiny-vm}}
out=${out%/}
parent=$(dirname -- "$out")
mkdir -p -- "$parent"
parent=$(cd -- "$parent" && pwd -P)
out=$parent/$(basename -- "$out")

log() { printf 'build-tiny-vm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -x "$BUSYBOX" ] || die "$BUSYBOX missing (apt-get install busybox-static)"
for t in apt-cache apt-get dpkg-deb dpkg-query cpio gzip grub-mkrescue xorriso qemu-img flock sha256sum; do
    command -v "$t" >/dev/null || die "$t not found"
done

# One builder at a time per cache directory.
exec 9>"$out.lock"
flock 9

self_sum=$(sha256sum < "${BASH_SOURCE[0]}" | cut -d' ' -f1)
bb_ver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
bb_sum=$(sha256sum < "$BUSYBOX" | cut -d' ' -f1)
# apt-cache takes ~1 s per call here (no pkgcache), so the fast path keys on the
# apt lists instead: the kernel candidate can only change when they change.
lists_fp=$( (stat -c '%n %s %Y' "$APT_LISTS"/*Packages* 2>/dev/null || true) | sha256sum | cut -d' ' -f1)
fast_key=$(printf '%s\n' "$self_sum" "$bb_ver" "$bb_sum" "$lists_fp" | sha256sum | cut -d' ' -f1)

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

# Which kernel: the package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
kver=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p' | head -n1)
if [ -z "$kver" ] || [ "$kver" = "(none)" ]; then die "no candidate version for $kpkg"; fi

inputs=$(printf '%s\n' "$self_sum" "$kpkg" "$kver" "$bb_ver" "$bb_sum" | sha256sum | cut -d' ' -f1)

write_stamp() { # DIR
    printf 'inputs=%s\nfast=%s\nkernel=%s %s\nbusybox=%s %s\n' \
        "$inputs" "$fast_key" "$kpkg" "$kver" "$bb_ver" "$bb_sum" > "$1/stamp.new"
    mv -f -- "$1/stamp.new" "$1/stamp"
}

if complete && [ "$(stamp_get inputs)" = "$inputs" ]; then
    write_stamp "$out"      # apt lists changed, inputs did not: refresh fast key only
    log "up to date: $out"
    exit 0
fi

log "building into $out ($kpkg $kver, busybox $bb_ver)"
name=$(basename -- "$out")
rm -rf -- "$parent/.$name.build."*     # left by a killed build (we hold the lock)
tmp=$(mktemp -d "$parent/.$name.build.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
new=$tmp/out
mkdir -p "$new" "$tmp/dl"

# --- kernel ------------------------------------------------------------------
aptopt=()
[ "$(id -u)" = 0 ] && aptopt=(-o APT::Sandbox::User=root)
(cd "$tmp/dl" && apt-get -q "${aptopt[@]}" download "$kpkg=$kver" >/dev/null)
dpkg-deb -x "$tmp"/dl/*.deb "$tmp/kx"
kimg=$(ls "$tmp"/kx/boot/vmlinuz-*)
cp -- "$kimg" "$new/vmlinuz"
printf '%s\n' "$CMDLINE" > "$new/cmdline"

# --- initramfs ---------------------------------------------------------------
r=$tmp/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,tmp,root,lib/modules,var/log,var/run}
cp -- "$BUSYBOX" "$r/bin/busybox"
"$BUSYBOX" --list-full | while IFS= read -r a; do
    [ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
done
# ACPI power button (QMP system_powerdown): button.ko + evdev.ko + busybox acpid.
for m in drivers/acpi/button.ko drivers/input/evdev.ko; do
    f=$(ls "$tmp"/kx/lib/modules/*/kernel/$m 2>/dev/null | head -n1 || true)
    [ -n "$f" ] && cp -- "$f" "$r/lib/modules/"
done

cat > "$r/init" <<'EOF'
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
hostname qwd-tiny
exec /sbin/init
EOF
chmod 755 "$r/init"

# busybox init: respawning shells on the serial port and the VGA console.
cat > "$r/etc/inittab" <<'EOF'
::sysinit:/etc/rcS
ttyS0::respawn:-/bin/sh
tty1::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot -f
EOF

cat > "$r/etc/rcS" <<'EOF'
#!/bin/sh
for m in /lib/modules/evdev.ko /lib/modules/button.ko; do
    [ -f "$m" ] && insmod "$m" 2>/dev/null
done
[ -d /etc/acpi/PWRF ] && acpid -c /etc/acpi
exit 0
EOF
chmod 755 "$r/etc/rcS"

printf '#!/bin/sh\npoweroff -f\n' > "$r/etc/acpi/PWRF/00000080"
chmod 755 "$r/etc/acpi/PWRF/00000080"

# Login shells print the banner on their own tty once they hold it open, so
# input sent after the banner is seen is never lost.
cat > "$r/etc/profile" <<EOF
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
export PS1='qwd# '
cd /root
echo '$BANNER'
EOF

(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n > "$new/initrd.img"

# --- ISO (BIOS, hybrid) and qcow2 --------------------------------------------
iso=$tmp/iso
mkdir -p "$iso/boot/grub"
cp -- "$new/vmlinuz" "$new/initrd.img" "$iso/boot/"
cat > "$iso/boot/grub/grub.cfg" <<EOF
set timeout=0
set timeout_style=hidden
menuentry "QWD tiny VM" {
    linux /boot/vmlinuz $CMDLINE
    initrd /boot/initrd.img
}
EOF
grub-mkrescue -o "$new/tiny.iso" --locales= --fonts= --themes= "$iso" \
    -- -volid QWD_TINY >"$tmp/grub-mkrescue.log" 2>&1 ||
    { cat "$tmp/grub-mkrescue.log" >&2; die "grub-mkrescue failed"; }
qemu-img convert -q -f raw -O qcow2 "$new/tiny.iso" "$new/tiny.qcow2"

write_stamp "$new"         # last

# --- swap into place -----------------------------------------------------------
old=
if [ -e "$out" ] || [ -L "$out" ]; then
    old=$tmp/previous
    mv -T -- "$out" "$old"
fi
mv -T -- "$new" "$out"
log "done: $(du -sh "$out" | cut -f1) in $out"
