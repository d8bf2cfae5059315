/* SPDX-License-Identifier: Apache-2.0 */
/* The QEMU command line of a session, built by one pure function so that it is the same, in
 * the same order, for the same machine profile (restoring a saved VM needs that). */
#ifndef QWD_ARGV_H
#define QWD_ARGV_H

#include <apr_pools.h>

/* The machine type is pinned: a saved memory image only loads into the same machine. */
#define QWD_MACHINE_TYPE "pc-i440fx-7.2"

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

/* sun_path is 108 bytes, NUL included. */
#define QWD_UNIX_PATH_MAX 107

typedef struct qwd_vm_spec {
    const char *qemu_binary;
    const char *session_id;  /* 32 hex chars; QEMU is named "qwd-" session_id */
    const char *session_dir; /* absolute: vnc.sock, qmp.sock, serial.log live there */
    const char *accel;       /* "kvm" or "tcg" */
    const char *cpu_model;   /* -cpu MODEL; NULL: "host" under kvm, "max" under tcg */
    int cpu;
    int memory_mib;
    const char *video;      /* "std", "virtio", "qxl" or "cirrus" */
    const char *nic_model;  /* "virtio-net-pci" or "e1000" */
    const char *disk_path;  /* the session's qcow2: overlay of the master, or ISO scratch disk */
    const char *cdrom_path; /* the ISO master, attached read-only; NULL for disk images */
    /* Guest RAM in this file (memory-backend-file, warm_recipe = shared); NULL: anonymous.
     * ram_shared: share=on (the template writes the file) or off (a clone's private
     * copy-on-write mapping). */
    const char *ram_path;
    int ram_shared;
    int guest_agent; /* a virtio-serial channel for the QEMU guest agent (qga.sock) */
} qwd_vm_spec;

/* Sets *argv to the NULL-terminated QEMU argv for spec, allocated in pool. Returns NULL, or a
 * readable reason when spec cannot be turned into a command line (unknown accel, video or NIC,
 * a Unix socket path of QWD_UNIX_PATH_MAX bytes or more). */
const char *qwd_argv_build(apr_pool_t *pool, const qwd_vm_spec *spec, const char ***argv);

/* A hash (16 hex chars) of everything in spec's argv that a saved memory image depends on:
 * the argv built with the per-session parts (id, directory, disk path) replaced by fixed
 * placeholders. A warm image only loads into a VM whose profile hash is the same. The RAM file's
 * path and share= are placeholders too, but whether RAM is in a file is part of the hash. */
const char *qwd_argv_profile_hash(apr_pool_t *pool, const qwd_vm_spec *spec);

/* session_dir "/" name, in pool. */
const char *qwd_session_file(apr_pool_t *pool, const char *session_dir, const char *name);

/* The -cpu model of spec: spec->cpu_model, else the accelerator's default. */
const char *qwd_argv_cpu_model(const char *accel, const char *cpu_model);

/* Whether text can be a -cpu model name (letters, digits, '-', '_', '.'; 1..64 chars): no
 * ',' options and nothing QEMU would read as another argument. */
int qwd_argv_cpu_model_is_valid(const char *cpu_model);

/* Whether video / nic_model is one qwd_argv_build accepts. */
int qwd_argv_video_is_valid(const char *video);
int qwd_argv_nic_is_valid(const char *nic_model);

#endif
