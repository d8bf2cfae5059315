# SPDX-License-Identifier: Apache-2.0
"""A real Slurm cluster for the tests, without systemd: munged, slurmctld and two slurmd nodes,
each node in its own network namespace (own address on a veth pair, own hostname in its own UTS
namespace, its own node-local directory in its own mount namespace), joined by a bridge in the
root namespace, where slurmctld, the web host's helper and Apache run. A display therefore
crosses a real network hop. Everything is stopped by PID and the namespaces and the bridge are
deleted afterwards, even when a start fails half-way."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from . import env, procs, vm

MUNGED = "/usr/sbin/munged"
MUNGEKEY = "/usr/sbin/mungekey"
SLURMCTLD = "/usr/sbin/slurmctld"
SLURMD = "/usr/sbin/slurmd"
SQUEUE = "/usr/bin/squeue"
SCONTROL = "/usr/bin/scontrol"


def available():
    """Why the cluster cannot run here, or None."""
    for program in (MUNGED, MUNGEKEY, SLURMCTLD, SLURMD, SQUEUE, shutil.which("ip") or "ip"):
        if not os.path.exists(program):
            return f"{program} is missing (scripts/install-deps installs slurmctld, slurmd, " \
                   f"slurm-client, munge)"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class Node:
    def __init__(self, cluster, index):
        self.cluster = cluster
        self.name = f"qn{index}"
        tag = cluster.tag
        self.netns = f"qwd{tag}n{index}"
        self.veth_host = f"qv{tag}h{index}"
        self.veth_node = f"qv{tag}n{index}"
        self.address = f"{cluster.subnet}.{10 + index}"
        # What the node sees at cluster.node_dir (a bind mount in its own mount namespace):
        # its node-local directory, here.
        self.local_dir = os.path.join(cluster.dir, "local", self.name)
        self.log_path = os.path.join(cluster.dir, f"slurmd-{self.name}.log")
        self.process = None

    def create_network(self):
        c = self.cluster
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_node)
        _ip("link", "set", self.veth_node, "netns", self.netns)
        _ip("link", "set", self.veth_host, "master", c.bridge, "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/24", "dev", self.veth_node)
        _ip("-n", self.netns, "link", "set", self.veth_node, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        # Name resolution in a namespace with only 127.0.0.1 on lo fails (next-wave.md).
        _ip("-n", self.netns, "addr", "add", "127.0.0.2/8", "dev", "lo", check=False)

    def start_slurmd(self):
        os.makedirs(self.local_dir, exist_ok=True)
        c = self.cluster
        os.makedirs(os.path.join(self.cluster.dir, "spool", self.name), exist_ok=True)
        # nsenter, not `ip netns exec`, which mounts a sysfs of its own over /sys and so hides
        # the cgroup file systems slurmd looks for. Its own UTS namespace (hostname = NodeName) and mount namespace (node-local dir),
        # inside its own network namespace
        script = (f"mount --make-rprivate / && mount --bind {self.local_dir} {c.node_dir} && "
                  f"hostname {self.name} && exec {SLURMD} -D -N {self.name} -f {c.conf}")
        self.process = procs.spawn(
            ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--uts", "--mount", "sh",
             "-c", script], self.log_path, env=c.env())

    def kill_slurmd(self, sig=signal.SIGKILL):
        """Kills the slurmd alone: its slurmstepds and jobs keep running, as on a real node
        whose daemon died."""
        procs.stop(self.process, sig)

    def pids(self):
        """Every process of this node (its network namespace)."""
        out = _ip("netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def processes(self, marker=""):
        return [(pid, procs.cmdline(pid)) for pid in self.pids()
                if marker in procs.cmdline(pid) and procs.pid_alive(pid)]

    def destroy(self):
        if self.process is not None:
            procs.stop(self.process, signal.SIGKILL)
        for _ in range(50):
            pids = [p for p in self.pids() if procs.pid_alive(p)]
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        _ip("link", "del", self.veth_host, check=False)
        _ip("netns", "del", self.netns, check=False)


class Cluster:
    """munged + slurmctld in the root namespace, two slurmd nodes of `cpus` CPUs and
    `memory_mib` MiB each. Clients (sbatch, squeue...) find it through env() (SLURM_CONF)."""

    def __init__(self, cpus=1, memory_mib=1024, nodes=2):
        self.dir = tempfile.mkdtemp(prefix="qwds-", dir="/tmp")
        os.chmod(self.dir, 0o711)  # munged wants its socket's directory searchable by all
        self.tag = f"{os.getpid() % 10000}"
        self.subnet = f"10.213.{os.getpid() % 200 + 20}"
        self.bridge = f"qwdb{self.tag}"
        self.controller_address = f"{self.subnet}.1"
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.munge_socket = os.path.join(self.dir, "munge.sock")
        # The node-local directory: the same path on every node, each node's own content.
        self.node_dir = os.path.join(self.dir, "node")
        self.cpus = cpus
        self.memory_mib = memory_mib
        self.nodes = [Node(self, i + 1) for i in range(nodes)]
        self.munged = None
        self.slurmctld = None

    # ---------------------------------------------------------------- setup

    def env(self):
        return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SLURM_CONF": self.conf}

    def write_conf(self):
        port = env.free_port()
        nodes = "\n".join(
            f"NodeName={n.name} NodeAddr={n.address} NodeHostname={n.name} CPUs={self.cpus} "
            f"RealMemory={self.memory_mib} State=UNKNOWN" for n in self.nodes)
        names = ",".join(n.name for n in self.nodes)
        with open(self.conf, "w") as f:
            f.write(f"""# generated by the mod_qwd test harness (test/qwdtest/slurm.py)
ClusterName=qwdtest
SlurmctldHost={socket.gethostname()}({self.controller_address})
MailProg=/bin/true
SlurmctldPort={port}
SlurmdPort={port + 1 if port < 65000 else port - 1}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={self.dir}/ctld
SlurmdSpoolDir={self.dir}/spool/%n
SlurmctldPidFile={self.dir}/slurmctld.pid
SlurmdPidFile={self.dir}/slurmd-%n.pid
SlurmctldLogFile={self.dir}/slurmctld.log
SlurmdLogFile={self.dir}/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/builtin
SlurmdParameters=config_overrides
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
JobRequeue=0
SlurmdTimeout=10
SlurmctldTimeout=10
MessageTimeout=5
KillWait=10
MinJobAge=60
InactiveLimit=0
{nodes}
PartitionName=qwd Nodes={names} Default=YES MaxTime=INFINITE State=UP
""")

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        for sub in ("ctld", "spool", "local", "node"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.write_conf()
        key = os.path.join(self.dir, "munge.key")
        subprocess.run([MUNGEKEY, "--create", f"--keyfile={key}"], check=True)
        self.munged = procs.spawn(
            [MUNGED, "-F", "-f", f"--socket={self.munge_socket}", f"--key-file={key}",
             f"--pid-file={self.dir}/munged.pid", f"--seed-file={self.dir}/munged.seed",
             f"--log-file={self.dir}/munged.log"], os.path.join(self.dir, "munged.out"))
        procs.wait_until(lambda: os.path.exists(self.munge_socket), 10, what="munged's socket")
        self.remove_network()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.controller_address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for node in self.nodes:
            node.create_network()
        self.slurmctld = procs.spawn([SLURMCTLD, "-D", "-i", "-f", self.conf],
                                     os.path.join(self.dir, "slurmctld.out"), env=self.env())
        procs.wait_until(self._controller_answers, 20, interval=0.2, what="slurmctld")
        for node in self.nodes:
            node.start_slurmd()
        self.wait_nodes_idle()

    def _controller_answers(self):
        if self.slurmctld.poll() is not None:
            raise AssertionError("slurmctld exited:\n" + self.log("slurmctld.log"))
        return self.run(SCONTROL, "ping", check=False).returncode == 0

    def wait_nodes_idle(self, timeout=30):
        def idle():
            states = self.node_states()
            return all(states.get(n.name, "").startswith("idle") for n in self.nodes)
        try:
            procs.wait_until(idle, timeout, interval=0.2, what="the nodes to be idle")
        except AssertionError:
            raise AssertionError(f"nodes {self.node_states()}\n"
                                 + "".join(self.log(f"slurmd-{n.name}.log") for n in self.nodes))

    def node_states(self):
        out = self.run("/usr/bin/sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout
        return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)

    def run(self, *argv, check=True):
        return subprocess.run(list(argv), env=self.env(), capture_output=True, text=True,
                              check=check, timeout=30)

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def install_qwd_node(self, image, machine="tiny.qcow2"):
        """What a site does on each node for qwd-node: the master image in the node-local
        machines dir (copied, as without a shared file system), and /etc/qwd/qwd-node.conf
        (here one file for all nodes, naming node-local paths). Returns the config's path."""
        for node in self.nodes:
            machines = os.path.join(node.local_dir, "machines")
            os.makedirs(machines, exist_ok=True)
            vm.place(image, os.path.join(machines, machine))
            # when a template of it is ready to be saved as a node-local warm image
            with open(os.path.join(machines, machine + ".warm"), "w") as f:
                f.write(f"ready_serial = {vm.BANNER}\n")
        self.node_config = os.path.join(self.dir, "qwd-node.conf")
        with open(self.node_config, "w") as f:
            f.write(f"""# qwd-node's configuration: the same file on every node, node-local paths
machines_dir = {self.node_dir}/machines
state_dir = {self.node_dir}/state
qemu_x86_64 = {env.QEMU}
qemu_img = {env.QEMU_IMG}
accel = {env.ACCEL}
iso_scratch_size = 64M
node_listen = 0.0.0.0
node_ports = 47000-47099
""")
        return self.node_config

    def helper_config(self):
        """The helper keys that put sessions on this cluster (and its environment)."""
        return dict(backend="slurm", slurm_node_command=env.NODE,
                    slurm_node_config=self.node_config,
                    slurm_output=f"{self.node_dir}/job-%j.log", slurm_poll_interval=1,
                    # warm builds are jobs that take a node's CPU: the tests that want them
                    # say so
                    slurm_warm="no")

    def build_warm(self, machine="tiny.qcow2", cpu=1, memory_mib=256, timeout=180):
        """Builds the profile's node-local warm image on every node, as the helper's build
        jobs do (qwd-node --warm, one job pinned to each node), and waits for them."""
        key = f"{machine}-{cpu}c-{memory_mib}m-std"
        for node in self.nodes:
            command = (f"exec {env.NODE} --config {self.node_config} --warm --session "
                       f"{os.urandom(16).hex()} --machine {machine} --format qcow2 --cpu {cpu} "
                       f"--memory-mib {memory_mib} --video std")
            self.run("/usr/bin/sbatch", "--parsable", f"--nodelist={node.name}",
                     "--job-name=qwd-warm-bench", f"--cpus-per-task={cpu}",
                     f"--mem={memory_mib + 256}", "--time=15", "--chdir=/",
                     f"--output={self.node_dir}/warm-%j.log", f"--wrap={command}")
        for node in self.nodes:
            meta = os.path.join(node.local_dir, "state", "warm", key, "meta.json")
            procs.wait_until(lambda: os.path.exists(meta), timeout, interval=0.5,
                             what=f"the warm image on {node.name}")

    def node_session_dir(self, node, session_id):
        """A session's directory on its node (serial.sock, qemu.log), seen from the host."""
        return os.path.join(self.node(node).local_dir, "state", "sessions", session_id)

    # ---------------------------------------------------------------- during tests

    def jobs(self):
        """{job id: (name, state, node list)} of every job squeue still shows."""
        out = self.run(SQUEUE, "-h", "-a", "-t", "all", "-o", "%i|%j|%T|%N").stdout
        jobs = {}
        for line in out.splitlines():
            job_id, name, state, nodes = line.split("|", 3)
            jobs[job_id] = (name, state, nodes)
        return jobs

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def restart_slurmd(self, node):
        node.kill_slurmd()
        node.start_slurmd()

    # ---------------------------------------------------------------- teardown

    def remove_network(self):
        for node in self.nodes:
            _ip("link", "del", node.veth_host, check=False)
            _ip("netns", "del", node.netns, check=False)
        _ip("link", "del", self.bridge, check=False)

    def stop(self):
        """Stops every daemon by PID, kills what still runs in the nodes' namespaces (jobs
        whose slurmd is gone), deletes the namespaces and the bridge, removes the files."""
        for node in self.nodes:
            node.destroy()
        for process in (self.slurmctld, self.munged):
            if process is not None:
                procs.stop(process, signal.SIGTERM)
        self.remove_network()
        left = procs.kill_leftovers(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        return left
