#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build the tiny test VM (Debian kernel + busybox-static initramfs) into a
# cache directory, once.  See test/vm/README.md.
#
#   build-tiny-vm.sh [OUTDIR]     default: ${QWD_VM_CACHE:-$HOME/.cache/qwd/tiny-vm}
#
# Produces OUTDIR/{vmlinuz,initrd.img,cmdline,tiny.iso,tiny.qcow2,stamp}.
# Inputs: this script and tiny-vm-common.sh (sourced), the kernel package linux-image-amd64 depends on and
# qemu-guest-agent (both fetched with apt-get download, never installed), the
# host's busybox-static, and the host's shared libraries qemu-ga links against.
# A rerun with unchanged inputs is a no-op; a build happens in a temp dir next
# to OUTDIR and replaces OUTDIR only when complete (stamp written last).
set -euo pipefail

BANNER='QWD-TINY-VM READY'
CMDLINE='quiet loglevel=3 console=tty0 console=ttyS0,115200'
BUSYBOX=/bin/busybox
QGA_PKG=qemu-guest-agent

. "$(dirname -- "${BASH_SOURCE[0]}")/tiny-vm-common.sh"
tiny_start build-tiny-vm "${1:-${QWD_VM_CACHE:-$HOME/.cache/qwd/tiny-vm}}" \
    apt-cache apt-get dpkg-deb dpkg-query ldd
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing (apt-get install busybox-static)"

bb_ver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
bb_sum=$(sha256sum < "$BUSYBOX" | cut -d' ' -f1)
fast_key=$(printf '%s\n' "$self_sum" "$bb_ver" "$bb_sum" "$lists_fp" | sha256sum | cut -d' ' -f1)

if tiny_current fast "$fast_key"; then
    log "up to date: $out"
    exit 0
fi

# Which kernel: the package linux-image-amd64 depends on, e.g. linux-image-6.1.0-56-amd64.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
policy=$(LC_ALL=C apt-cache policy "$kpkg" "$QGA_PKG")     # one call for both
kver=$(tiny_candidate "$policy" "$kpkg")
if [ -z "$kver" ] || [ "$kver" = "(none)" ]; then die "no candidate version for $kpkg"; fi
qver=$(tiny_candidate "$policy" "$QGA_PKG")
if [ -z "$qver" ] || [ "$qver" = "(none)" ]; then die "no candidate version for $QGA_PKG (apt-get update?)"; fi

inputs=$(printf '%s\n' "$self_sum" "$kpkg" "$kver" "$bb_ver" "$bb_sum" "$QGA_PKG" "$qver" | sha256sum | cut -d' ' -f1)

write_stamp() { # DIR
    printf 'inputs=%s\nfast=%s\nkernel=%s %s\nbusybox=%s %s\nqga=%s %s\n' \
        "$inputs" "$fast_key" "$kpkg" "$kver" "$bb_ver" "$bb_sum" "$QGA_PKG" "$qver" > "$1/stamp.new"
    mv -f -- "$1/stamp.new" "$1/stamp"
}

if tiny_current inputs "$inputs"; then
    write_stamp "$out"      # apt lists changed, inputs did not: refresh fast key only
    log "up to date: $out"
    exit 0
fi

log "building into $out ($kpkg $kver, busybox $bb_ver, $QGA_PKG $qver)"
tiny_build_dir

# --- kernel (and the qemu-guest-agent .deb, unpacked below) ------------------
aptopt=()
[ "$(id -u)" = 0 ] && aptopt=(-o APT::Sandbox::User=root)
(cd "$tmp/dl" && apt-get -q "${aptopt[@]}" download "$kpkg=$kver" "$QGA_PKG=$qver" >/dev/null)
tiny_kernel "$kpkg"

# --- initramfs ---------------------------------------------------------------
r=$tmp/root
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,tmp,root,lib/modules,var/log,var/run}
cp -- "$BUSYBOX" "$r/bin/busybox"
tiny_applets "$BUSYBOX"
# Kernel modules, loaded by /etc/rcS with insmod in the order of /etc/modules, then
# /etc/modules.virtio if the VM has any virtio PCI device, then the list of each kind
# of device it has: /etc/modules.virtio-serial, .9p, .virtio-blk (dependencies
# first, taken from each module's modinfo "depends=").
: > "$r/etc/modules"
: > "$r/etc/modules.virtio-serial"
: > "$r/etc/modules.virtio"
: > "$r/etc/modules.9p"
: > "$r/etc/modules.virtio-blk"
# ACPI power button (QMP system_powerdown): button.ko + evdev.ko + busybox acpid.
add_module evdev modules optional
add_module button modules optional
# virtio-serial for the QEMU guest agent: the PCI transport, then the console driver.
add_module virtio_pci modules.virtio
add_module virtio_console modules.virtio-serial
# Host folders (virtio-9p), mounted only when the host asks (a seed's script or the
# agent's guest-exec): a 9p device must stay unmounted for the VM to be saved.
add_module 9pnet_virtio modules.9p
add_module 9p modules.9p
# virtio disks, and ISO 9660 for a NoCloud seed (a read-only disk labelled cidata).
add_module virtio_blk modules.virtio-blk
add_module isofs modules.virtio-blk

# QEMU guest agent: /usr/sbin/qemu-ga from the .deb plus the host's copies of the
# shared libraries it needs (ldd), at the same paths, and the dynamic loader.
dpkg-deb -x "$tmp"/dl/"$QGA_PKG"_*.deb "$tmp/qx"
qga_rel=usr/sbin/qemu-ga
[ -x "$tmp/qx/$qga_rel" ] || qga_rel=$(cd "$tmp/qx" && find . -type f -name qemu-ga | sed 's|^\./||' | head -n1)
[ -n "$qga_rel" ] && [ -x "$tmp/qx/$qga_rel" ] || die "no qemu-ga binary in $QGA_PKG $qver"
lib_pkg() { # SONAME -> Debian package that ships it
    case $1 in
        libglib-2.0.so.*|libgmodule-2.0.so.*|libgio-2.0.so.*|libgobject-2.0.so.*) echo libglib2.0-0 ;;
        libnuma.so.1) echo libnuma1 ;;
        liburing.so.2) echo liburing2 ;;
        libudev.so.1) echo libudev1 ;;
        libpcre2-8.so.0) echo libpcre2-8-0 ;;
        libc.so.6|libm.so.6|ld-linux-x86-64.so.2) echo libc6 ;;
        *) echo "the package that ships $1 (one of $QGA_PKG's Depends)" ;;
    esac
}
ldd_out=$(LC_ALL=C ldd "$tmp/qx/$qga_rel" 2>&1) || die "ldd $qga_rel failed: $ldd_out"
missing=$(printf '%s\n' "$ldd_out" | awk '$2 == "=>" && $3 == "not" { print $1 }')
if [ -n "$missing" ]; then
    for l in $missing; do log "qemu-ga needs $l, missing on this host: apt-get install $(lib_pkg "$l")"; done
    die "shared libraries for qemu-ga missing (scripts/install-deps installs them)"
fi
libs=$(printf '%s\n' "$ldd_out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
printf '%s\n' "$libs" | grep -q '/ld-linux' || die "ldd $qga_rel: no dynamic loader in: $ldd_out"
mkdir -p "$r/$(dirname "$qga_rel")"
cp -- "$tmp/qx/$qga_rel" "$r/$qga_rel"
for l in $libs; do
    mkdir -p "$r$(dirname "$l")"
    cp -L -- "$l" "$r$l"
done

# busybox init: respawning shells on the serial port and the VGA console.
tiny_init qwd-tiny ttyS0

cat > "$r/etc/rcS" <<'EOF'
#!/bin/sh
# Which virtio PCI devices (transitional and modern ids): virtio-serial (only then
# look for the guest agent's port), 9p (host folders), block (disks, a seed).
vserial= v9p= vblk= nblk=0
for d in /sys/bus/pci/devices/*; do
    read -r v < "$d/vendor" && read -r i < "$d/device" || continue
    case $v:$i in
    0x1af4:0x1003|0x1af4:0x1043) vserial=1 ;;
    0x1af4:0x1009|0x1af4:0x1049) v9p=1 ;;
    0x1af4:0x1001|0x1af4:0x1042) vblk=1 nblk=$((nblk + 1)) ;;
    esac
done
virtio=$vserial$v9p$vblk
for list in /etc/modules ${virtio:+/etc/modules.virtio} ${vserial:+/etc/modules.virtio-serial} \
            ${v9p:+/etc/modules.9p} ${vblk:+/etc/modules.virtio-blk}; do
    while read -r m; do
        insmod "/lib/modules/$m.ko" 2>/dev/null
    done < "$list"
done
[ -d /etc/acpi/PWRF ] && acpid -c /etc/acpi

# QEMU guest agent, only if the host gave us a virtio-serial port named
# org.qemu.guest_agent.0.  Without a virtio-serial device there is no wait.
qga_port() {
    for n in /sys/class/virtio-ports/*/name; do
        [ "$(cat "$n" 2>/dev/null)" = org.qemu.guest_agent.0 ] || continue
        n=${n%/name}
        echo "/dev/${n##*/}"
        return 0
    done
    return 1
}
if [ -n "$vserial" ]; then
    # Ports and their names arrive from the host asynchronously: wait up to 2 s.
    i=0
    until port=$(qga_port) && [ -c "$port" ]; do
        i=$((i + 1))
        [ $i -gt 100 ] && { port=; break; }
        usleep 20000
    done
    if [ -n "$port" ]; then
        # Respawned if it ever exits.  Logs to /var/log/qemu-ga.log, never the console.
        ( while :; do
              qemu-ga -m virtio-serial -p "$port" -t /var/run -l /var/log/qemu-ga.log
              sleep 1
          done ) </dev/null >/dev/null 2>&1 &
        # Let it open the port before the shells print the banner (at most 3 s).
        i=0
        while [ $i -lt 150 ]; do
            for p in $(pidof qemu-ga); do
                for f in /proc/$p/fd/*; do
                    [ "$(readlink "$f")" = "$port" ] && break 3
                done
            done
            i=$((i + 1))
            usleep 20000
        done
    fi
fi

# A NoCloud seed (a volume labelled cidata, as mod_qwd gives cold sessions): run its
# user-data once, as cloud-init's user scripts run, its output on the console.
if [ -n "$vblk" ]; then
    # Disks appear as their driver probes them: wait for all of them (at most 2 s).
    i=0
    while [ "$(ls -d /sys/block/vd* 2>/dev/null | wc -l)" -lt "$nblk" ] && [ $i -lt 100 ]; do
        i=$((i + 1))
        usleep 20000
    done
    # The ISO 9660 volume label is the 32 bytes at 32808 (busybox's findfs misses
    # small volumes).
    seed=
    for dev in /dev/vd?; do
        label=$(dd if="$dev" bs=1 skip=32808 count=6 2>/dev/null)
        [ "$label" = cidata ] && seed=$dev
    done
    if [ -n "$seed" ] && mkdir -p /run/cidata && mount -t iso9660 -o ro "$seed" /run/cidata; then
        cp /run/cidata/user-data /run/user-data 2>/dev/null
        umount /run/cidata
        if [ "$(head -c 2 /run/user-data 2>/dev/null)" = '#!' ]; then
            chmod 700 /run/user-data
            ( /run/user-data </dev/null >/dev/console 2>&1 & )
        fi
    fi
fi
exit 0
EOF
chmod 755 "$r/etc/rcS"

# If the builder may chroot (root), check that qemu-ga runs with just what was copied.
if [ "$(id -u)" = 0 ] && chroot "$r" /bin/true 2>/dev/null; then
    chroot "$r" "/$qga_rel" -V >/dev/null 2>&1 || die "qemu-ga does not run in the initramfs (missing library?)"
fi

printf '#!/bin/sh\npoweroff -f\n' > "$r/etc/acpi/PWRF/00000080"
chmod 755 "$r/etc/acpi/PWRF/00000080"

tiny_initrd

# --- ISO (BIOS, hybrid) and qcow2 --------------------------------------------
tiny_iso "QWD tiny VM" QWD_TINY

write_stamp "$new"         # last

# --- swap into place -----------------------------------------------------------
tiny_swap_in
