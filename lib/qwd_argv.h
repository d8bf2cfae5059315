/* SPDX-License-Identifier: Apache-2.0 */
/* The command lines of a VM, built by pure functions so that they are the same, in the same
 * order, for the same machine profile (restoring a saved VM needs that): the profile's spec,
 * QEMU's argv and the qemu-img argv that creates the VM's disk. */
#ifndef QWD_ARGV_H
#define QWD_ARGV_H

#include <apr_pools.h>

/* Guest architectures (a machine's sidecar says "arch = aarch64"; none is x86_64). */
#define QWD_ARCH_X86_64 "x86_64"
#define QWD_ARCH_AARCH64 "aarch64"

/* The machine types are pinned: a saved memory image only loads into the same machine. */
#define QWD_MACHINE_TYPE_X86_64 "pc-i440fx-7.2"
/* The GIC the accelerator does best: v3 under TCG, the host's own under KVM. */
#define QWD_MACHINE_TYPE_AARCH64 "virt-7.2,gic-version=max"

/* Files in a session's directory (STATE/sessions/ID/). */
#define QWD_SESSION_VNC_SOCKET "vnc.sock"
#define QWD_SESSION_QMP_SOCKET "qmp.sock"
#define QWD_SESSION_SERIAL_LOG "serial.log"
#define QWD_SESSION_SERIAL_SOCKET "serial.sock" /* the guest console, both ways */
#define QWD_SESSION_AGENT_SOCKET "qga.sock"     /* the guest agent's channel, when it has one */
/* The virtio-serial port name qemu-ga looks for in the guest. */
#define QWD_GUEST_AGENT_PORT "org.qemu.guest_agent.0"
#define QWD_SESSION_QEMU_LOG "qemu.log"
#define QWD_SESSION_DISK "disk.qcow2"
#define QWD_SESSION_RECORD "session.json"
/* The relay's ways in for viewers (support/helper_relay.c): the session's own link, and one per
 * share, named SHARE_PREFIX + the share's id + SHARE_SUFFIX. */
#define QWD_SESSION_RELAY_SOCKET "relay.sock"
#define QWD_SESSION_SHARE_PREFIX "s-"
#define QWD_SESSION_SHARE_SUFFIX ".sock"

/* sun_path is 108 bytes, NUL included. */
#define QWD_UNIX_PATH_MAX 107

/* A restoring VM finds its saved state on this file descriptor (-incoming fd:N): the launcher
 * places the state file there in the child, so the argv is the same for every launch. */
#define QWD_RESTORE_STATE_FD 3

/* How a VM gets a saved memory state (warm images, docs/instant-on.md). */
typedef enum {
    QWD_RESTORE_NONE,  /* it boots */
    QWD_RESTORE_FD,    /* -incoming fd:QWD_RESTORE_STATE_FD: the state is read at start */
    QWD_RESTORE_DEFER, /* -incoming defer: the state is sent over QMP (migrate-incoming) */
} qwd_restore;

/* What every VM of a helper shares: from its configuration and the accelerator it chose. */
typedef struct qwd_vm_host {
    const char *arch;      /* the host's own: only its guests may use KVM (NULL: x86_64) */
    const char *accel;     /* "kvm" or "tcg", for guests of the host's arch */
    const char *cpu_model; /* -cpu MODEL for them; NULL: the accelerator's default */
    const char *nic_model;
    const char *qemu_x86_64;      /* QEMU for x86_64 guests; NULL: none */
    const char *qemu_aarch64;     /* QEMU for aarch64 guests; NULL: none */
    const char *firmware_aarch64; /* UEFI of aarch64 guests (-bios) */
} qwd_vm_host;

/* A host folder shared with the guest over virtio-9p (docs/data-sessions.md). The device (tag,
 * security model, read-only) is part of the machine profile, so of its warm image; the path is
 * each session's own and never part of the argv hash. */
typedef struct qwd_vm_share {
    const char *tag;            /* the mount tag the guest mounts (qwd_argv_share_tag_is_valid) */
    const char *security_model; /* passthrough, mapped-xattr, mapped-file or none */
    int readonly;
    const char *path; /* the host folder (absolute); a placeholder in templates and hashes */
} qwd_vm_share;

/* A machine profile: the master image and the VM's size and devices. Every VM of a profile
 * has the same argv apart from id, directory and disk, which is what a warm image is for. */
typedef struct qwd_vm_profile {
    const char *machine;      /* its name in machines_dir */
    const char *image_path;   /* the master image (absolute) */
    const char *image_format; /* qwd_image_format(): "iso" is a read-only CD-ROM */
    const char *arch;         /* the guest's architecture; NULL: x86_64 */
    int guest_agent;          /* the machine has the guest agent channel (its sidecar says so) */
    int cpu;
    int memory_mib;
    const char *video;
    const qwd_vm_share *shares; /* virtio-9p devices, in the machine's order */
    int share_count;
} qwd_vm_profile;

typedef struct qwd_vm_spec {
    const char *qemu_binary;
    const char *arch;        /* QWD_ARCH_X86_64 (also when NULL) or QWD_ARCH_AARCH64 */
    const char *firmware;    /* aarch64: the UEFI image QEMU loads (-bios) */
    const char *session_id;  /* 32 hex chars; QEMU is named "qwd-" session_id */
    const char *session_dir; /* absolute: vnc.sock, qmp.sock, serial.log live there */
    const char *accel;       /* "kvm" or "tcg" */
    const char *cpu_model;   /* -cpu MODEL; NULL: "host" under kvm, "max" under tcg */
    int cpu;
    int memory_mib;
    const char *video;      /* "std", "virtio", "qxl" or "cirrus" (aarch64: std or virtio) */
    const char *nic_model;  /* "virtio-net-pci" or "e1000" */
    const char *disk_path;  /* the session's qcow2: overlay of the master, or ISO scratch disk */
    const char *cdrom_path; /* the ISO master, attached read-only; NULL for disk images */
    /* Guest RAM in this file (memory-backend-file, warm_recipe = shared); NULL: anonymous.
     * ram_shared: share=on (the template writes the file) or off (a clone's private
     * copy-on-write mapping). */
    const char *ram_path;
    int ram_shared;
    int guest_agent;            /* a virtio-serial channel for the QEMU guest agent (qga.sock) */
    const qwd_vm_share *shares; /* host folders (virtio-9p), from the profile */
    int share_count;
    const char *seed_path; /* a NoCloud seed (raw image), read-only; NULL: none (cold boots) */
    const char *const *vfio_hosts; /* PCI devices passed through (vfio-pci host=), or NULL */
    int vfio_count;
    qwd_restore restore; /* appended last: -incoming fd:N or -incoming defer */
} qwd_vm_spec;

/* A copy of profile whose strings (and shares) are in pool. */
qwd_vm_profile qwd_vm_profile_copy(apr_pool_t *pool, const qwd_vm_profile *profile);

/* The spec of one VM of profile on host: session_id names it, session_dir holds its sockets
 * and logs, disk_path is its own qcow2 (an overlay, or an ISO profile's scratch disk). */
qwd_vm_spec qwd_vm_spec_make(const qwd_vm_host *host, const qwd_vm_profile *profile,
                             const char *session_id, const char *session_dir,
                             const char *disk_path);

/* The qemu-img argv (NULL-terminated, in pool) that creates disk_path: a qcow2 overlay over
 * base (a qcow2, e.g. a warm image's frozen base) when base is set, else over the profile's
 * master, or a blank qcow2 of scratch_size for an ISO profile. */
const char **qwd_disk_argv(apr_pool_t *pool, const char *qemu_img, const qwd_vm_profile *profile,
                           const char *base, const char *disk_path, const char *scratch_size);

/* Sets *argv to the NULL-terminated QEMU argv for spec, allocated in pool. Returns NULL, or a
 * readable reason when spec cannot be turned into a command line (unknown accel, video or NIC,
 * a Unix socket path of QWD_UNIX_PATH_MAX bytes or more). */
const char *qwd_argv_build(apr_pool_t *pool, const qwd_vm_spec *spec, const char ***argv);

/* A hash (16 hex chars) of everything in spec's argv that a saved memory image depends on:
 * the argv built with the per-session parts (id, directory, disk path) replaced by fixed
 * placeholders. A warm image only loads into a VM whose profile hash is the same. The RAM file's
 * path and share= are placeholders too, but whether RAM is in a file is part of the hash; how
 * the state comes in (restore) is not. So are the paths of host folders: their devices count,
 * not whose folder they share. */
const char *qwd_argv_profile_hash(apr_pool_t *pool, const qwd_vm_spec *spec);

/* session_dir "/" name, in pool. */
const char *qwd_session_file(apr_pool_t *pool, const char *session_dir, const char *name);

/* The -cpu model of spec: spec->cpu_model, else the accelerator's default. */
const char *qwd_argv_cpu_model(const char *accel, const char *cpu_model);

/* Whether text can be a -cpu model name (letters, digits, '-', '_', '.'; 1..64 chars): no
 * ',' options and nothing QEMU would read as another argument. */
int qwd_argv_cpu_model_is_valid(const char *cpu_model);

/* Whether text can be a 9p mount tag (1..31 of letters, digits, '_', '-'), a 9p security
 * model, a PCI address (DOMAIN:BUS:SLOT.FUNCTION, lower-case hex). */
int qwd_argv_share_tag_is_valid(const char *tag);
int qwd_argv_security_model_is_valid(const char *model);
int qwd_argv_pci_address_is_valid(const char *address);

/* Whether video / nic_model is one qwd_argv_build accepts (for some arch). */
int qwd_argv_video_is_valid(const char *video);
int qwd_argv_nic_is_valid(const char *nic_model);

/* Whether arch is a guest architecture qwd_argv_build knows (NULL is x86_64). */
int qwd_argv_arch_is_valid(const char *arch);

/* The -machine type of guests of arch (NULL: x86_64), pinned. */
const char *qwd_argv_machine_type(const char *arch);

/* Whether guests of arch have the display video: x86_64 has std, virtio, qxl and cirrus (-vga);
 * aarch64 has std (ramfb, the framebuffer UEFI sets up) and virtio (virtio-gpu-pci). */
int qwd_argv_video_is_valid_for(const char *arch, const char *video);

/* The video of a VM of arch when a start names none: std on x86_64, virtio on aarch64 (its
 * VMs can be saved and restored: see qwd_argv_profile_unsaveable). */
const char *qwd_argv_default_video(const char *arch);

/* NULL when a VM of profile can be saved and restored (a warm image), else why not: ramfb
 * (video std on aarch64) keeps no migration state in QEMU 7.2, so a restored clone's screen
 * stays blank. */
const char *qwd_argv_profile_unsaveable(const qwd_vm_profile *profile);

#endif
