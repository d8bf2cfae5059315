/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the QEMU command line: exact argv for a disk and an ISO profile on x86_64 and
 * aarch64, kvm's -cpu, the accelerator of guests of another arch, and the refusals (socket
 * path length, unknown video, a video the arch has not). */
#include "unit.h"

#include "qwd_argv.h"

#include <apr_strings.h>

static const char *joined(apr_pool_t *pool, const char **argv)
{
    const char *line = argv[0];
    for (int i = 1; argv[i]; i++) {
        line = apr_pstrcat(pool, line, " ", argv[i], NULL);
    }
    return line;
}

static qwd_vm_spec disk_spec(void)
{
    qwd_vm_spec spec = {
        .qemu_binary = "/usr/bin/qemu-system-x86_64",
        .session_id = "0123456789abcdef0123456789abcdef",
        .session_dir = "/s/0123456789abcdef0123456789abcdef",
        .accel = "tcg",
        .cpu = 2,
        .memory_mib = 512,
        .video = "virtio",
        .nic_model = "e1000",
        .disk_path = "/s/0123456789abcdef0123456789abcdef/disk.qcow2",
    };
    return spec;
}

UNIT_TEST(argv_exact_for_a_disk_image)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    const char **argv;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK_STR(joined(pool, argv),
              "/usr/bin/qemu-system-x86_64 -name qwd-0123456789abcdef0123456789abcdef"
              " -machine pc-i440fx-7.2 -accel tcg -cpu max -m 512 -smp 2 -nodefaults"
              " -no-user-config -display none -vga virtio -device virtio-balloon"
              " -device vmgenid,guid=auto -nic user,model=e1000"
              " -drive file=/s/0123456789abcdef0123456789abcdef/disk.qcow2,format=qcow2,if=virtio"
              " -vnc unix:/s/0123456789abcdef0123456789abcdef/vnc.sock,share=force-shared"
              " -qmp unix:/s/0123456789abcdef0123456789abcdef/qmp.sock,server=on,wait=off"
              " -chardev socket,id=serial0,path=/s/0123456789abcdef0123456789abcdef/serial.sock"
              ",server=on,wait=off,logfile=/s/0123456789abcdef0123456789abcdef/serial.log"
              " -serial chardev:serial0"
              " -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_iso_adds_readonly_cdrom_and_kvm_uses_host_cpu)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    spec.accel = "kvm";
    spec.cdrom_path = "/m/a,b.iso";
    const char **argv;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    const char *line = joined(pool, argv);
    CHECK(strstr(line, " -accel kvm -cpu host ") != NULL);
    CHECK(strstr(line, " -drive file=/m/a,,b.iso,format=raw,media=cdrom,readonly=on -boot "
                       "order=d -vnc ")
          != NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_guest_agent_adds_its_channel_and_changes_the_profile_hash)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    const char *without = qwd_argv_profile_hash(pool, &spec);
    spec.guest_agent = 1;
    const char **argv;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK(strstr(joined(pool, argv),
                 " -serial chardev:serial0"
                 " -chardev socket,id=qga0,path=/s/0123456789abcdef0123456789abcdef/qga.sock"
                 ",server=on,wait=off -device virtio-serial-pci,id=qwd-vserial"
                 " -device virtserialport,bus=qwd-vserial.0,chardev=qga0"
                 ",name=org.qemu.guest_agent.0 -sandbox ")
          != NULL);
    CHECK(strcmp(without, qwd_argv_profile_hash(pool, &spec)) != 0);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_is_deterministic)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    const char **first, **second;
    qwd_argv_build(pool, &spec, &first);
    qwd_argv_build(pool, &spec, &second);
    CHECK_STR(joined(pool, first), joined(pool, second));
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_refuses_long_socket_paths_and_unknown_devices)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    const char **argv;
    char long_dir[120];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[0] = '/';
    long_dir[sizeof long_dir - 1] = '\0';
    spec.session_dir = long_dir;
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    spec = disk_spec();
    spec.video = "vmware";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    spec = disk_spec();
    spec.accel = "auto";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    spec = disk_spec();
    spec.nic_model = "rtl8139";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_profile_hash_ignores_session_parts_but_not_the_profile)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec(), other = disk_spec();
    other.session_id = "fedcba9876543210fedcba9876543210";
    other.session_dir = "/t/warm/x";
    other.disk_path = "/t/warm/x/base.qcow2";
    const char *hash = qwd_argv_profile_hash(pool, &spec);
    CHECK(hash != NULL && strlen(hash) == 16);
    CHECK_STR(qwd_argv_profile_hash(pool, &other), hash);
    other.memory_mib = 1024;
    CHECK(strcmp(qwd_argv_profile_hash(pool, &other), hash) != 0);
    other = disk_spec();
    other.video = "std";
    CHECK(strcmp(qwd_argv_profile_hash(pool, &other), hash) != 0);
    other = disk_spec();
    other.video = "bogus";
    CHECK(qwd_argv_profile_hash(pool, &other) == NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_ram_file_backend_and_its_hash)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec(), clone = disk_spec();
    const char **argv;
    const char *anonymous = qwd_argv_profile_hash(pool, &spec);
    spec.ram_path = "/t/warm/k/ram.bin";
    spec.ram_shared = 1;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK(strstr(joined(pool, argv),
                 " -object memory-backend-file,id=ram0,size=512M,mem-path=/t/warm/k/ram.bin,"
                 "share=on -machine pc-i440fx-7.2,memory-backend=ram0 ")
          != NULL);
    clone.ram_path = "/t/warm/k/ram.bin";
    CHECK(qwd_argv_build(pool, &clone, &argv) == NULL);
    CHECK(strstr(joined(pool, argv), ",share=off -machine") != NULL);
    /* Template (share=on) and clone (share=off) hash alike; RAM in a file or not differs. */
    CHECK_STR(qwd_argv_profile_hash(pool, &clone), qwd_argv_profile_hash(pool, &spec));
    CHECK(strcmp(qwd_argv_profile_hash(pool, &spec), anonymous) != 0);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_cpu_model_is_configurable_and_checked)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    const char **argv;
    spec.accel = "kvm";
    spec.cpu_model = "qemu64";
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK(strstr(joined(pool, argv), " -accel kvm -cpu qemu64 -m ") != NULL);
    spec.accel = "tcg";
    spec.cpu_model = "Skylake-Client-v4";
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK(strstr(joined(pool, argv), " -accel tcg -cpu Skylake-Client-v4 -m ") != NULL);
    spec.cpu_model = "";
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK(strstr(joined(pool, argv), " -cpu max ") != NULL);
    CHECK_STR(qwd_argv_cpu_model("kvm", NULL), "host");
    CHECK_STR(qwd_argv_cpu_model("tcg", NULL), "max");
    /* the model is one QEMU word: no ",options", no option-looking names */
    spec.cpu_model = "host,+vmx";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    spec.cpu_model = "-S";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    /* the model is part of a warm image's identity */
    spec.cpu_model = "qemu64";
    const char *hash = qwd_argv_profile_hash(pool, &spec);
    spec.cpu_model = "max";
    CHECK(strcmp(qwd_argv_profile_hash(pool, &spec), hash) != 0);
    apr_pool_destroy(pool);
}

static qwd_vm_profile disk_profile(void)
{
    qwd_vm_profile profile = {.machine = "tiny.qcow2",
                              .image_path = "/m/tiny.qcow2",
                              .image_format = "qcow2",
                              .cpu = 2,
                              .memory_mib = 512,
                              .video = "virtio"};
    return profile;
}

UNIT_TEST(vm_spec_of_a_profile_is_the_session_spec)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_host host = {
        .qemu_x86_64 = "/usr/bin/qemu-system-x86_64", .accel = "tcg", .nic_model = "e1000"};
    qwd_vm_profile profile = disk_profile();
    qwd_vm_spec expected = disk_spec();
    qwd_vm_spec spec = qwd_vm_spec_make(&host, &profile, expected.session_id, expected.session_dir,
                                        expected.disk_path);
    const char **made, **built;
    CHECK(qwd_argv_build(pool, &spec, &made) == NULL);
    CHECK(qwd_argv_build(pool, &expected, &built) == NULL);
    CHECK_STR(joined(pool, made), joined(pool, built));
    /* an ISO is the read-only CD-ROM; the disk is the scratch disk */
    profile.image_path = "/m/tiny.iso";
    profile.image_format = "iso";
    profile.guest_agent = 1;
    spec = qwd_vm_spec_make(&host, &profile, "ID", "/DIR", "/DIR/disk.qcow2");
    CHECK_STR(spec.cdrom_path, "/m/tiny.iso");
    CHECK(spec.guest_agent == 1);
    apr_pool_destroy(pool);
}

UNIT_TEST(disk_argv_overlays_the_master_or_a_base_or_makes_a_scratch_disk)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_profile profile = disk_profile();
    CHECK_STR(
        joined(pool, qwd_disk_argv(pool, "/usr/bin/qemu-img", &profile, NULL, "/s/d.qcow2", "10G")),
        "/usr/bin/qemu-img create -q -f qcow2 -b /m/tiny.qcow2 -F qcow2 /s/d.qcow2");
    CHECK_STR(joined(pool, qwd_disk_argv(pool, "qemu-img", &profile, "/w/base.qcow2", "/s/d.qcow2",
                                         "10G")),
              "qemu-img create -q -f qcow2 -b /w/base.qcow2 -F qcow2 /s/d.qcow2");
    profile.image_format = "vpc";
    CHECK(strstr(joined(pool, qwd_disk_argv(pool, "qemu-img", &profile, NULL, "/s/d.qcow2", "1G")),
                 " -F vpc ")
          != NULL);
    profile.image_format = "iso";
    CHECK_STR(joined(pool, qwd_disk_argv(pool, "qemu-img", &profile, NULL, "/s/d.qcow2", "64M")),
              "qemu-img create -q -f qcow2 /s/d.qcow2 64M");
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_restore_comes_last_and_is_not_in_the_profile_hash)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    const char *booting = qwd_argv_profile_hash(pool, &spec);
    const char **argv;
    spec.restore = QWD_RESTORE_FD;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    const char *line = joined(pool, argv);
    CHECK_STR(line + strlen(line) - strlen(" -incoming fd:3"), " -incoming fd:3");
    CHECK_STR(qwd_argv_profile_hash(pool, &spec), booting);
    spec.restore = QWD_RESTORE_DEFER;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    line = joined(pool, argv);
    CHECK_STR(line + strlen(line) - strlen(" -incoming defer"), " -incoming defer");
    CHECK_STR(qwd_argv_profile_hash(pool, &spec), booting);
    apr_pool_destroy(pool);
}

UNIT_TEST(profile_copy_owns_its_strings)
{
    apr_pool_t *pool, *scratch;
    apr_pool_create(&pool, NULL);
    apr_pool_create(&scratch, NULL);
    qwd_vm_profile profile = disk_profile();
    profile.video = apr_pstrdup(scratch, "qxl");
    qwd_vm_profile copy = qwd_vm_profile_copy(pool, &profile);
    apr_pool_destroy(scratch);
    CHECK_STR(copy.video, "qxl");
    CHECK_STR(copy.image_path, "/m/tiny.qcow2");
    CHECK(copy.cpu == 2 && copy.memory_mib == 512);
    apr_pool_destroy(pool);
}

static qwd_vm_spec aarch64_spec(void)
{
    qwd_vm_spec spec = disk_spec();
    spec.qemu_binary = "/usr/bin/qemu-system-aarch64";
    spec.arch = QWD_ARCH_AARCH64;
    spec.firmware = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";
    return spec;
}

UNIT_TEST(argv_exact_for_an_aarch64_disk_image)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = aarch64_spec();
    const char **argv;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    CHECK_STR(joined(pool, argv),
              "/usr/bin/qemu-system-aarch64 -name qwd-0123456789abcdef0123456789abcdef"
              " -machine virt-7.2,gic-version=max -accel tcg -cpu max -m 512 -smp 2 -nodefaults"
              " -no-user-config -display none -bios /usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
              " -device virtio-gpu-pci -device qemu-xhci,id=qwd-usb"
              " -device usb-kbd,bus=qwd-usb.0 -device usb-tablet,bus=qwd-usb.0"
              " -device virtio-balloon -nic user,model=e1000"
              " -drive file=/s/0123456789abcdef0123456789abcdef/disk.qcow2,format=qcow2,if=virtio"
              " -vnc unix:/s/0123456789abcdef0123456789abcdef/vnc.sock,share=force-shared"
              " -qmp unix:/s/0123456789abcdef0123456789abcdef/qmp.sock,server=on,wait=off"
              " -chardev socket,id=serial0,path=/s/0123456789abcdef0123456789abcdef/serial.sock"
              ",server=on,wait=off,logfile=/s/0123456789abcdef0123456789abcdef/serial.log"
              " -serial chardev:serial0"
              " -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    /* std is ramfb; the ISO is a SCSI CD-ROM that boots first; RAM in a file as on x86_64 */
    spec.video = "std";
    spec.cdrom_path = "/m/a.iso";
    spec.ram_path = "/w/ram.bin";
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    const char *line = joined(pool, argv);
    CHECK(strstr(line, " -bios /usr/share/qemu-efi-aarch64/QEMU_EFI.fd -device ramfb ") != NULL);
    CHECK(strstr(line, " -drive file=/m/a.iso,format=raw,if=none,id=qwd-cd,media=cdrom,"
                       "readonly=on -device virtio-scsi-pci,id=qwd-scsi"
                       " -device scsi-cd,bus=qwd-scsi.0,drive=qwd-cd,bootindex=0 -vnc ")
          != NULL);
    CHECK(strstr(line, " -machine virt-7.2,gic-version=max,memory-backend=ram0 ") != NULL);
    /* nothing x86 about it */
    CHECK(strstr(line, "i440fx") == NULL && strstr(line, "-vga") == NULL
          && strstr(line, "vmgenid") == NULL && strstr(line, "-boot") == NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_aarch64_refuses_x86_displays_and_a_missing_firmware_or_qemu)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = aarch64_spec();
    const char **argv;
    spec.video = "qxl";
    CHECK(strstr(qwd_argv_build(pool, &spec, &argv), "not available"));
    spec = aarch64_spec();
    spec.firmware = NULL;
    CHECK(strstr(qwd_argv_build(pool, &spec, &argv), "firmware"));
    spec = aarch64_spec();
    spec.qemu_binary = NULL;
    CHECK(strstr(qwd_argv_build(pool, &spec, &argv), "aarch64"));
    spec = aarch64_spec();
    spec.arch = "riscv64";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    CHECK(qwd_argv_video_is_valid_for(QWD_ARCH_AARCH64, "virtio"));
    CHECK(!qwd_argv_video_is_valid_for(QWD_ARCH_AARCH64, "cirrus"));
    CHECK(qwd_argv_video_is_valid_for(NULL, "cirrus"));
    CHECK_STR(qwd_argv_default_video(QWD_ARCH_AARCH64), "virtio");
    CHECK_STR(qwd_argv_default_video(NULL), "std");
    CHECK_STR(qwd_argv_machine_type(NULL), "pc-i440fx-7.2");
    CHECK(qwd_argv_arch_is_valid(NULL) && qwd_argv_arch_is_valid("aarch64"));
    CHECK(!qwd_argv_arch_is_valid("arm64"));
    apr_pool_destroy(pool);
}

UNIT_TEST(vm_spec_runs_the_hosts_arch_under_its_accel_and_others_under_tcg)
{
    qwd_vm_host host = {.arch = QWD_ARCH_X86_64,
                        .accel = "kvm",
                        .cpu_model = "host",
                        .nic_model = "virtio-net-pci",
                        .qemu_x86_64 = "/usr/bin/qemu-system-x86_64",
                        .qemu_aarch64 = "/usr/bin/qemu-system-aarch64",
                        .firmware_aarch64 = "/fw/QEMU_EFI.fd"};
    qwd_vm_profile profile = disk_profile();
    qwd_vm_spec spec = qwd_vm_spec_make(&host, &profile, "ID", "/DIR", "/DIR/disk");
    CHECK_STR(spec.qemu_binary, "/usr/bin/qemu-system-x86_64");
    CHECK_STR(spec.accel, "kvm");
    CHECK_STR(spec.cpu_model, "host");
    CHECK(spec.firmware == NULL);
    profile.arch = QWD_ARCH_AARCH64;
    spec = qwd_vm_spec_make(&host, &profile, "ID", "/DIR", "/DIR/disk");
    CHECK_STR(spec.qemu_binary, "/usr/bin/qemu-system-aarch64");
    CHECK_STR(spec.accel, "tcg");
    CHECK(spec.cpu_model == NULL); /* the emulator's default: max */
    CHECK_STR(spec.firmware, "/fw/QEMU_EFI.fd");
    /* on an aarch64 host it is the other way round */
    host.arch = QWD_ARCH_AARCH64;
    spec = qwd_vm_spec_make(&host, &profile, "ID", "/DIR", "/DIR/disk");
    CHECK_STR(spec.accel, "kvm");
    CHECK_STR(spec.cpu_model, "host");
    profile.arch = NULL;
    spec = qwd_vm_spec_make(&host, &profile, "ID", "/DIR", "/DIR/disk");
    CHECK_STR(spec.accel, "tcg");
    CHECK_STR(spec.arch, QWD_ARCH_X86_64);
}

UNIT_TEST(aarch64_ramfb_profiles_cannot_be_saved)
{
    qwd_vm_profile profile = disk_profile();
    CHECK(qwd_argv_profile_unsaveable(&profile) == NULL);
    profile.video = "std";
    CHECK(qwd_argv_profile_unsaveable(&profile) == NULL);
    profile.arch = QWD_ARCH_AARCH64;
    CHECK(strstr(qwd_argv_profile_unsaveable(&profile), "ramfb"));
    profile.video = "virtio";
    CHECK(qwd_argv_profile_unsaveable(&profile) == NULL);
}

UNIT_TEST(argv_host_folders_seed_and_passthrough)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    qwd_vm_share shares[] = {{"home", "mapped-xattr", 0, "/data/home/alice"},
                             {"beam", "none", 1, "/data/beam,1"}};
    const char *hosts[] = {"0000:65:00.0", "0000:65:00.1"};
    spec.shares = shares;
    spec.share_count = 2;
    spec.seed_path = "/s/seed.iso";
    spec.vfio_hosts = hosts;
    spec.vfio_count = 2;
    const char **argv;
    CHECK(qwd_argv_build(pool, &spec, &argv) == NULL);
    const char *line = joined(pool, argv);
    CHECK(strstr(line, ",format=qcow2,if=virtio -drive file=/s/seed.iso,format=raw,if=virtio,"
                       "readonly=on -fsdev local,id=qwdfs0,path=/data/home/alice,"
                       "security_model=mapped-xattr -device virtio-9p-pci,fsdev=qwdfs0,"
                       "mount_tag=home -fsdev local,id=qwdfs1,path=/data/beam,,1,"
                       "security_model=none,readonly=on -device virtio-9p-pci,fsdev=qwdfs1,"
                       "mount_tag=beam -vnc ")
          != NULL);
    CHECK(strstr(line, " -device vfio-pci,host=0000:65:00.0 -device vfio-pci,host=0000:65:00.1"
                       " -sandbox ")
          != NULL);
    shares[0].tag = "bad tag";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    shares[0].tag = "home";
    hosts[1] = "65:00.1";
    CHECK(qwd_argv_build(pool, &spec, &argv) != NULL);
    apr_pool_destroy(pool);
}

UNIT_TEST(argv_hash_counts_host_folder_devices_not_their_paths)
{
    apr_pool_t *pool;
    apr_pool_create(&pool, NULL);
    qwd_vm_spec spec = disk_spec();
    qwd_vm_share alice[] = {{"home", "mapped-xattr", 0, "/data/home/alice"}};
    qwd_vm_share bob[] = {{"home", "mapped-xattr", 0, "/data/home/bob"}};
    qwd_vm_share readonly[] = {{"home", "mapped-xattr", 1, "/data/home/bob"}};
    spec.share_count = 1;
    spec.shares = alice;
    const char *hash_alice = qwd_argv_profile_hash(pool, &spec);
    spec.shares = bob;
    CHECK_STR(qwd_argv_profile_hash(pool, &spec), hash_alice);
    spec.shares = readonly;
    CHECK(strcmp(qwd_argv_profile_hash(pool, &spec), hash_alice) != 0);
    spec.share_count = 0;
    CHECK(strcmp(qwd_argv_profile_hash(pool, &spec), hash_alice) != 0);
    CHECK(qwd_argv_pci_address_is_valid("0000:00:02.7"));
    CHECK(!qwd_argv_pci_address_is_valid("0000:00:02.8"));
    CHECK(!qwd_argv_pci_address_is_valid("0000:0G:02.0"));
    apr_pool_destroy(pool);
}
