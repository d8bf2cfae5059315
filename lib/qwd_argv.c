/* SPDX-License-Identifier: Apache-2.0 */
/* Builds the command lines of a VM: QEMU's argv with a fixed machine type and device order per
 * guest architecture, VNC and QMP only on Unix sockets in the session directory, no default
 * devices, a seccomp sandbox; and the qemu-img argv of its disk. */
#include "qwd_argv.h"
#include "qwd_image.h"

#include <apr_strings.h>
#include <apr_tables.h>
#include <string.h>

static const char *const videos[] = {"std", "virtio", "qxl", "cirrus", NULL};
static const char *const nics[] = {"virtio-net-pci", "e1000", NULL};
static const char *const arches[] = {QWD_ARCH_X86_64, QWD_ARCH_AARCH64, NULL};
static const char *const aarch64_videos[] = {"std", "virtio", NULL};
static const char *const security_models[] = {"passthrough", "mapped-xattr", "mapped-file", "none",
                                              NULL};
#define SHARE_TAG_MAX 31
#define PCI_ADDRESS_LENGTH 12 /* 0000:00:00.0 */

static int is_one_of(const char *value, const char *const *allowed)
{
    for (; value && *allowed; allowed++) {
        if (!strcmp(value, *allowed)) {
            return 1;
        }
    }
    return 0;
}

int qwd_argv_video_is_valid(const char *video)
{
    return is_one_of(video, videos);
}

int qwd_argv_nic_is_valid(const char *nic_model)
{
    return is_one_of(nic_model, nics);
}

static int is_aarch64(const char *arch)
{
    return arch && !strcmp(arch, QWD_ARCH_AARCH64);
}

int qwd_argv_arch_is_valid(const char *arch)
{
    return !arch || is_one_of(arch, arches);
}

const char *qwd_argv_machine_type(const char *arch)
{
    return is_aarch64(arch) ? QWD_MACHINE_TYPE_AARCH64 : QWD_MACHINE_TYPE_X86_64;
}

int qwd_argv_video_is_valid_for(const char *arch, const char *video)
{
    return is_one_of(video, is_aarch64(arch) ? aarch64_videos : videos);
}

const char *qwd_argv_default_video(const char *arch)
{
    return is_aarch64(arch) ? "virtio" : "std";
}

const char *qwd_argv_profile_unsaveable(const qwd_vm_profile *profile)
{
    if (is_aarch64(profile->arch) && profile->video && !strcmp(profile->video, "std")) {
        return "video std of an aarch64 guest is ramfb, which QEMU 7.2 does not save: a "
               "restored VM's screen would stay blank (video virtio can be saved)";
    }
    return NULL;
}

int qwd_argv_share_tag_is_valid(const char *tag)
{
    size_t length = tag ? strlen(tag) : 0;
    return length >= 1 && length <= SHARE_TAG_MAX
           && strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
                  == length;
}

int qwd_argv_security_model_is_valid(const char *model)
{
    return is_one_of(model, security_models);
}

int qwd_argv_pci_address_is_valid(const char *address)
{
    static const char shape[] = "hhhh:hh:hh.h";
    if (!address || strlen(address) != PCI_ADDRESS_LENGTH) {
        return 0;
    }
    for (int i = 0; shape[i]; i++) {
        int hex =
            (address[i] >= '0' && address[i] <= '9') || (address[i] >= 'a' && address[i] <= 'f');
        if (shape[i] == 'h' ? !hex : address[i] != shape[i]) {
            return 0;
        }
    }
    return address[PCI_ADDRESS_LENGTH - 1] <= '7'; /* a function is 0..7 */
}

const char *qwd_argv_cpu_model(const char *accel, const char *cpu_model)
{
    if (cpu_model && *cpu_model) {
        return cpu_model;
    }
    return accel && !strcmp(accel, "kvm") ? "host" : "max";
}

int qwd_argv_cpu_model_is_valid(const char *cpu_model)
{
    size_t length = cpu_model ? strlen(cpu_model) : 0;
    return length >= 1 && length <= 64 && cpu_model[0] != '-'
           && strspn(cpu_model, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
                  == length;
}

const char *qwd_session_file(apr_pool_t *pool, const char *session_dir, const char *name)
{
    return apr_pstrcat(pool, session_dir, "/", name, NULL);
}

/* QEMU's option parser splits on ',' and reads ",," as a literal comma. */
static const char *qemu_opt_escape(apr_pool_t *pool, const char *value)
{
    if (!strchr(value, ',')) {
        return value;
    }
    char *escaped = apr_palloc(pool, 2 * strlen(value) + 1), *out = escaped;
    for (; *value; value++) {
        *out++ = *value;
        if (*value == ',') {
            *out++ = ',';
        }
    }
    *out = '\0';
    return escaped;
}

static void push(apr_array_header_t *args, const char *option, const char *value)
{
    APR_ARRAY_PUSH(args, const char *) = option;
    if (value) {
        APR_ARRAY_PUSH(args, const char *) = value;
    }
}

static const char *copy_or_null(apr_pool_t *pool, const char *text)
{
    return text ? apr_pstrdup(pool, text) : NULL;
}

qwd_vm_profile qwd_vm_profile_copy(apr_pool_t *pool, const qwd_vm_profile *profile)
{
    qwd_vm_profile copy = *profile;
    copy.machine = copy_or_null(pool, profile->machine);
    copy.image_path = copy_or_null(pool, profile->image_path);
    copy.image_format = copy_or_null(pool, profile->image_format);
    copy.arch = copy_or_null(pool, profile->arch);
    copy.video = copy_or_null(pool, profile->video);
    if (profile->share_count) {
        qwd_vm_share *shares = apr_pcalloc(pool, sizeof *shares * (apr_size_t)profile->share_count);
        for (int i = 0; i < profile->share_count; i++) {
            shares[i].tag = copy_or_null(pool, profile->shares[i].tag);
            shares[i].security_model = copy_or_null(pool, profile->shares[i].security_model);
            shares[i].readonly = profile->shares[i].readonly;
            shares[i].path = copy_or_null(pool, profile->shares[i].path);
        }
        copy.shares = shares;
    }
    return copy;
}

qwd_vm_spec qwd_vm_spec_make(const qwd_vm_host *host, const qwd_vm_profile *profile,
                             const char *session_id, const char *session_dir, const char *disk_path)
{
    int iso = profile->image_format && !strcmp(profile->image_format, "iso");
    const char *arch = profile->arch ? profile->arch : QWD_ARCH_X86_64;
    /* KVM runs guests of the host's own arch only; the others are emulated (TCG), with the
     * emulator's own default CPU model. */
    int native = !strcmp(arch, host->arch ? host->arch : QWD_ARCH_X86_64);
    qwd_vm_spec spec = {
        .qemu_binary = is_aarch64(arch) ? host->qemu_aarch64 : host->qemu_x86_64,
        .arch = arch,
        .firmware = is_aarch64(arch) ? host->firmware_aarch64 : NULL,
        .session_id = session_id,
        .session_dir = session_dir,
        .accel = native ? host->accel : "tcg",
        .cpu_model = native ? host->cpu_model : NULL,
        .cpu = profile->cpu,
        .memory_mib = profile->memory_mib,
        .video = profile->video,
        .nic_model = host->nic_model,
        .disk_path = disk_path,
        .cdrom_path = iso ? profile->image_path : NULL,
        .guest_agent = profile->guest_agent,
        .shares = profile->shares,
        .share_count = profile->share_count,
    };
    return spec;
}

const char **qwd_disk_argv(apr_pool_t *pool, const char *qemu_img, const qwd_vm_profile *profile,
                           const char *base, const char *disk_path, const char *scratch_size)
{
    apr_array_header_t *args = apr_array_make(pool, 12, sizeof(const char *));
    push(args, qemu_img, NULL);
    push(args, "create", NULL);
    push(args, "-q", NULL);
    push(args, "-f", "qcow2");
    if (base) {
        push(args, "-b", base);
        push(args, "-F", "qcow2");
        push(args, disk_path, NULL);
    }
    else if (strcmp(profile->image_format, "iso")) {
        /* qemu-img 7.2 refuses an overlay whose backing format is not spelled out. */
        push(args, "-b", profile->image_path);
        push(args, "-F", qwd_image_qemu_format(profile->image_format));
        push(args, disk_path, NULL);
    }
    else {
        push(args, disk_path, scratch_size);
    }
    APR_ARRAY_PUSH(args, const char *) = NULL;
    return (const char **)args->elts;
}

/* The display and input devices of an aarch64 guest: the virt machine has no VGA and no PS/2,
 * so the display is ramfb or virtio-gpu and input goes through USB (a tablet: absolute
 * pointer positions, as VNC sends them). */
static void push_aarch64_devices(apr_array_header_t *args, const qwd_vm_spec *spec)
{
    push(args, "-bios", spec->firmware);
    push(args, "-device", !strcmp(spec->video, "virtio") ? "virtio-gpu-pci" : "ramfb");
    push(args, "-device", "qemu-xhci,id=qwd-usb");
    push(args, "-device", "usb-kbd,bus=qwd-usb.0");
    push(args, "-device", "usb-tablet,bus=qwd-usb.0");
}

/* The ISO of a session, read-only, attached so that it boots first: an IDE CD-ROM on x86_64
 * (-boot order=d); a SCSI one on aarch64, whose virt machine has no IDE and whose UEFI follows
 * bootindex. The format is spelled out, so the ISO is never probed. */
static void push_cdrom(apr_pool_t *pool, apr_array_header_t *args, const qwd_vm_spec *spec)
{
    const char *file = qemu_opt_escape(pool, spec->cdrom_path);
    if (is_aarch64(spec->arch)) {
        push(args, "-drive",
             apr_pstrcat(pool, "file=", file,
                         ",format=raw,if=none,id=qwd-cd,media=cdrom,readonly=on", NULL));
        push(args, "-device", "virtio-scsi-pci,id=qwd-scsi");
        push(args, "-device", "scsi-cd,bus=qwd-scsi.0,drive=qwd-cd,bootindex=0");
        return;
    }
    push(args, "-drive",
         apr_pstrcat(pool, "file=", file, ",format=raw,media=cdrom,readonly=on", NULL));
    push(args, "-boot", "order=d");
}

const char *qwd_argv_build(apr_pool_t *pool, const qwd_vm_spec *spec, const char ***argv)
{
    int kvm = spec->accel && !strcmp(spec->accel, "kvm");
    int aarch64 = is_aarch64(spec->arch);
    if (!kvm && !(spec->accel && !strcmp(spec->accel, "tcg"))) {
        return "the accelerator must be kvm or tcg";
    }
    if (!qwd_argv_arch_is_valid(spec->arch)) {
        return "unknown guest architecture";
    }
    if (!spec->qemu_binary || !*spec->qemu_binary) {
        return apr_psprintf(pool, "no QEMU binary for %s guests",
                            aarch64 ? QWD_ARCH_AARCH64 : QWD_ARCH_X86_64);
    }
    if (aarch64 && (!spec->firmware || !*spec->firmware)) {
        return "no UEFI firmware for aarch64 guests";
    }
    if (!qwd_argv_video_is_valid_for(spec->arch, spec->video)) {
        return qwd_argv_video_is_valid(spec->video) ? "this video device is not available for "
                                                      "the guest's architecture"
                                                    : "unknown video device";
    }
    if (!qwd_argv_nic_is_valid(spec->nic_model)) {
        return "unknown network card model";
    }
    if (spec->cpu_model && *spec->cpu_model && !qwd_argv_cpu_model_is_valid(spec->cpu_model)) {
        return "bad CPU model name";
    }
    for (int i = 0; i < spec->share_count; i++) {
        const qwd_vm_share *share = &spec->shares[i];
        if (!qwd_argv_share_tag_is_valid(share->tag)
            || !qwd_argv_security_model_is_valid(share->security_model) || !share->path
            || share->path[0] != '/') {
            return "bad host folder (mount tag, security model or path)";
        }
    }
    for (int i = 0; i < spec->vfio_count; i++) {
        if (!qwd_argv_pci_address_is_valid(spec->vfio_hosts[i])) {
            return "bad PCI address of a passed-through device";
        }
    }
    const char *vnc_socket = qwd_session_file(pool, spec->session_dir, QWD_SESSION_VNC_SOCKET);
    const char *qmp_socket = qwd_session_file(pool, spec->session_dir, QWD_SESSION_QMP_SOCKET);
    if (strlen(vnc_socket) > QWD_UNIX_PATH_MAX - 1 || strlen(qmp_socket) > QWD_UNIX_PATH_MAX - 1) {
        return apr_psprintf(pool,
                            "the socket path %s is longer than %d bytes (use a shorter "
                            "state_dir)",
                            qmp_socket, QWD_UNIX_PATH_MAX - 1);
    }

    apr_array_header_t *args = apr_array_make(pool, 48, sizeof(const char *));
    push(args, spec->qemu_binary, NULL);
    push(args, "-name", apr_pstrcat(pool, "qwd-", spec->session_id, NULL));
    const char *machine_type = qwd_argv_machine_type(spec->arch);
    if (spec->ram_path) {
        push(args, "-object",
             apr_psprintf(pool, "memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=%s",
                          spec->memory_mib, qemu_opt_escape(pool, spec->ram_path),
                          spec->ram_shared ? "on" : "off"));
        push(args, "-machine", apr_pstrcat(pool, machine_type, ",memory-backend=ram0", NULL));
    }
    else {
        push(args, "-machine", machine_type);
    }
    push(args, "-accel", kvm ? "kvm" : "tcg");
    push(args, "-cpu", qwd_argv_cpu_model(spec->accel, spec->cpu_model));
    push(args, "-m", apr_itoa(pool, spec->memory_mib));
    push(args, "-smp", apr_itoa(pool, spec->cpu));
    push(args, "-nodefaults", NULL);
    push(args, "-no-user-config", NULL);
    push(args, "-display", "none");
    if (aarch64) {
        push_aarch64_devices(args, spec);
    }
    else {
        push(args, "-vga", spec->video);
    }
    push(args, "-device", "virtio-balloon");
    /* Every x86_64 VM has a VM generation ID: a restored clone must have the same device set
     * as its template, and "auto" gives each QEMU process a fresh GUID, which tells the guest
     * (and its RNG) that it was cloned. qemu-system-aarch64 7.2 has no vmgenid device. */
    if (!aarch64) {
        push(args, "-device", "vmgenid,guid=auto");
    }
    push(args, "-nic", apr_pstrcat(pool, "user,model=", spec->nic_model, NULL));
    push(args, "-drive",
         apr_pstrcat(pool, "file=", qemu_opt_escape(pool, spec->disk_path),
                     ",format=qcow2,if=virtio", NULL));
    if (spec->cdrom_path) {
        push_cdrom(pool, args, spec);
    }
    if (spec->seed_path) {
        /* The NoCloud seed: a read-only disk the guest finds by its label (cidata). */
        push(args, "-drive",
             apr_pstrcat(pool, "file=", qemu_opt_escape(pool, spec->seed_path),
                         ",format=raw,if=virtio,readonly=on", NULL));
    }
    for (int i = 0; i < spec->share_count; i++) {
        const qwd_vm_share *share = &spec->shares[i];
        push(args, "-fsdev",
             apr_psprintf(pool, "local,id=qwdfs%d,path=%s,security_model=%s%s", i,
                          qemu_opt_escape(pool, share->path), share->security_model,
                          share->readonly ? ",readonly=on" : ""));
        push(args, "-device",
             apr_psprintf(pool, "virtio-9p-pci,fsdev=qwdfs%d,mount_tag=%s", i, share->tag));
    }
    /* force-shared: no client may have the display alone (and evict the other viewers) */
    push(
        args, "-vnc",
        apr_pstrcat(pool, "unix:", qemu_opt_escape(pool, vnc_socket), ",share=force-shared", NULL));
    push(
        args, "-qmp",
        apr_pstrcat(pool, "unix:", qemu_opt_escape(pool, qmp_socket), ",server=on,wait=off", NULL));
    /* The console is a socket (a client may type on it) that QEMU also logs to serial.log. */
    push(args, "-chardev",
         apr_pstrcat(pool, "socket,id=serial0,path=",
                     qemu_opt_escape(pool, qwd_session_file(pool, spec->session_dir,
                                                            QWD_SESSION_SERIAL_SOCKET)),
                     ",server=on,wait=off,logfile=",
                     qemu_opt_escape(
                         pool, qwd_session_file(pool, spec->session_dir, QWD_SESSION_SERIAL_LOG)),
                     NULL));
    push(args, "-serial", "chardev:serial0");
    if (spec->guest_agent) {
        push(args, "-chardev",
             apr_pstrcat(pool, "socket,id=qga0,path=",
                         qemu_opt_escape(pool, qwd_session_file(pool, spec->session_dir,
                                                                QWD_SESSION_AGENT_SOCKET)),
                         ",server=on,wait=off", NULL));
        push(args, "-device", "virtio-serial-pci,id=qwd-vserial");
        push(args, "-device",
             "virtserialport,bus=qwd-vserial.0,chardev=qga0,name=" QWD_GUEST_AGENT_PORT);
    }
    for (int i = 0; i < spec->vfio_count; i++) {
        push(args, "-device", apr_pstrcat(pool, "vfio-pci,host=", spec->vfio_hosts[i], NULL));
    }
    /* QEMU 7.2 spells the first filter "obsolete". */
    push(args, "-sandbox",
         "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    if (spec->restore == QWD_RESTORE_FD) {
        push(args, "-incoming", apr_psprintf(pool, "fd:%d", QWD_RESTORE_STATE_FD));
    }
    else if (spec->restore == QWD_RESTORE_DEFER) {
        push(args, "-incoming", "defer");
    }
    APR_ARRAY_PUSH(args, const char *) = NULL;
    *argv = (const char **)args->elts;
    return NULL;
}

const char *qwd_argv_profile_hash(apr_pool_t *pool, const qwd_vm_spec *spec)
{
    qwd_vm_spec canonical = *spec;
    canonical.session_id = "ID";
    canonical.session_dir = "/DIR";
    canonical.disk_path = "/DIR/disk";
    if (canonical.ram_path) {
        canonical.ram_path = "/WARM/ram";
    }
    /* Each session shares its own folders: only the devices count. */
    qwd_vm_share *shares = apr_pcalloc(pool, sizeof *shares * (apr_size_t)(spec->share_count + 1));
    for (int i = 0; i < spec->share_count; i++) {
        shares[i] = spec->shares[i];
        shares[i].path = "/SHARE";
    }
    canonical.shares = shares;
    canonical.ram_shared = 0;
    canonical.restore = QWD_RESTORE_NONE;
    const char **argv;
    if (qwd_argv_build(pool, &canonical, &argv)) {
        return NULL;
    }
    /* FNV-1a, 64 bits: an identity check against accidents, not an adversary (the warm image
     * directory is the helper's own). */
    apr_uint64_t hash = 0xcbf29ce484222325ULL;
    for (int i = 0; argv[i]; i++) {
        for (const unsigned char *c = (const unsigned char *)argv[i];; c++) {
            hash = (hash ^ *c) * 0x100000001b3ULL;
            if (!*c) {
                break;
            }
        }
    }
    return apr_psprintf(pool, "%016" APR_UINT64_T_HEX_FMT, hash);
}
