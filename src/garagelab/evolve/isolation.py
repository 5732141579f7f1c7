"""The operating-system wall around a candidate process: namespaces, a filesystem view, no
privileges, a system-call filter. Everything here runs in the candidate's forked child before
the candidate's code, and needs no helper binary.

Two ways to build the same wall:
- `root` (garagelab runs as root): private mount, network, IPC, UTS and PID namespaces made
  directly, then the unprivileged user `nobody`;
- `user` (any other user, where the kernel allows unprivileged user namespaces): the same
  namespaces inside a new user namespace, then every capability dropped.
Both give the candidate a filesystem of its own: a read-only view of what Python needs (the
system's /usr and libraries, the interpreter, the installed packages, garagelab's own source),
a private /tmp and /dev/shm (size-limited tmpfs, gone with the namespace), a few device nodes,
and nothing else: no home, no repository, no ../shared, no run store, no host /proc. No network
(an empty network namespace; the filter also refuses Internet sockets), no other process to
see, signal or trace (a PID namespace: when its first process ends the kernel kills every
process left in it), and a seccomp filter refusing the calls that reach into the kernel or out
of the namespaces (ptrace, mount, unshare/setns, namespace flags on clone, bpf, keyctl,
perf_event_open, userfaultfd, io_uring, module loading, sched_setaffinity: a process pinned
to its CPUs stays on them, ...).

`mode()` says which of the two this machine allows; with neither, untrusted code is refused
unless the user opts out explicitly (`--unsafe-no-isolation`, `UNSAFE_ENV`): then only the
rlimits, the process group and the scrubbed environment remain.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import pwd
import struct
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from garagelab.core.errors import UserError

UNSAFE_ENV = "GARAGELAB_UNSAFE_NO_ISOLATION"

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | 0x02000000

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
# statvfs flags a read-only remount must keep (the kernel refuses to clear locked ones)
_KEPT = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))

PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, PR_SET_SECUREBITS = 1, 24, 38, 22, 28
SECCOMP_MODE_FILTER = 2
SECBITS_LOCKED_NOROOT = 0x2F  # NOROOT, NO_SETUID_FIXUP and their locks: uid 0 regains nothing
DEVICES = ("null", "zero", "full", "random", "urandom")
# files of /etc that the C library and Python read lazily (dlopen's cache, user names, time zone)
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime", "alternatives")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


@dataclass(frozen=True)
class View:
    """What the candidate's filesystem holds: read-only paths (at the same place as on the
    host) and the size of its private /tmp and /dev/shm."""

    read_only: tuple[str, ...]
    tmp_mb: int = 64


def default_view(extra: tuple[str, ...] = (), tmp_mb: int = 64) -> View:
    """The system, the interpreter, the installed packages and garagelab's source: what the
    candidate's process needs to import lazily, and nothing of the repository, the home
    directory or the data around it (only package directories of sys.path, never its other
    entries: the working directory, a test folder, the repository root)."""
    import garagelab

    paths = [*SYSTEM, *(f"/etc/{name}" for name in ETC)]
    paths += [sys.prefix, sys.base_prefix, *sysconfig.get_paths().values()]
    paths += [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    paths.append(str(Path(garagelab.__file__).resolve().parents[1]))
    paths += extra
    kept: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths if p and os.path.exists(p)}, key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return View(tuple(kept), tmp_mb)


# -- which wall this machine allows ------------------------------------------------------------
@functools.cache
def mode() -> str:
    """`root`, `user` or `none` (neither: see `require`). Probed once, in a forked child."""
    if os.geteuid() == 0:
        return "root" if _probe("root") else "none"
    return "user" if _probe("user") else "none"


def require() -> str:
    """The wall to build, or a one-line refusal when there is none and the user has not opted out."""
    found = mode()
    if found == "none" and not os.environ.get(UNSAFE_ENV):
        raise UserError(
            "this machine gives no way to isolate untrusted programs (no root, and unprivileged user namespaces "
            "are disabled: sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces); enable them, or "
            f"run with --unsafe-no-isolation (or {UNSAFE_ENV}=1) to run model-written code with only resource limits"
        )
    return found


def _probe(kind: str) -> bool:
    """Whether the namespaces and a private mount can be made here, tried in a fresh interpreter
    (forking this one could deadlock: JAX may have started threads in it)."""
    done = subprocess.run(
        [sys.executable, "-m", "garagelab.evolve.isolation", kind],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        capture_output=True,
        timeout=60,
    )
    return done.returncode == 0


def _probe_here(kind: str) -> None:
    enter_namespaces(kind, pid_namespace=True)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")


# -- the steps, in the order the child takes them ------------------------------------------------
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def enter_namespaces(kind: str, pid_namespace: bool) -> None:
    """New mount, network, IPC and UTS namespaces (and PID: the next child is its first
    process), inside a new user namespace when not root; no mount event reaches the host."""
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWPID if pid_namespace else 0)
    uid, gid = os.getuid(), os.getgid()
    if kind == "user":
        flags |= CLONE_NEWUSER
    _check(_libc().unshare(flags), "unshare")
    if kind == "user":  # root inside, the user outside; setgroups must be denied before the gid map
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def build_root(view: View, new_root: str, with_proc: bool) -> None:
    """Mount the view on `new_root` (an empty directory) and make it the root: a tmpfs holding
    read-only binds of `view.read_only`, the device nodes, a private /tmp and /dev/shm, and a
    /proc of this PID namespace (when there is one: the host's would show every process)."""
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    dev = new_root + "/dev"
    os.makedirs(dev, mode=0o755)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in DEVICES:
        _bind(f"/dev/{name}", f"{dev}/{name}", read_only=False)
    for place in (f"{dev}/shm", new_root + "/tmp"):  # before the binds: a package may live under /tmp
        os.makedirs(place, mode=0o755)
        _mount("tmpfs", place, "tmpfs", MS_NOSUID | MS_NODEV, f"size={view.tmp_mb}m,mode=1777")
    for path in view.read_only:
        if os.path.islink(path):  # /bin -> usr/bin on merged-/usr systems
            target = new_root + path
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            os.symlink(os.readlink(path), target)
        else:
            _bind(path, new_root + path, read_only=True)
    if with_proc:
        os.makedirs(new_root + "/proc", mode=0o555, exist_ok=True)
        with contextlib.suppress(OSError):  # refused where the host's /proc is partly hidden; not needed
            _mount("proc", new_root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    old = new_root + "/.old-root"
    os.makedirs(old, mode=0o700)
    _check(_libc().syscall(_SYSCALLS["pivot_root"], new_root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(_libc().umount2(b"/.old-root", MNT_DETACH), "umount old root")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _bind(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        Path(target).touch()
    _mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        kept = functools.reduce(lambda f, pair: f | (pair[1] if os.statvfs(source).f_flag & pair[0] else 0), _KEPT, 0)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept)


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc().mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def drop_privileges(kind: str) -> None:
    """Become powerless for good: `nobody` as root; as a user-namespace root, no capabilities
    (none in the bounding set either, and securebits so that uid 0 regains none); never any
    privilege from exec (no_new_privs)."""
    libc = _libc()
    if kind == "root":
        user = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    elif kind == "user":
        for cap in range(64):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
        _check(libc.prctl(PR_SET_SECUREBITS, SECBITS_LOCKED_NOROOT, 0, 0, 0), "securebits")
        header = struct.pack("II", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
        _check(libc.syscall(_SYSCALLS["capset"], header, bytes(24)), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies."""
    _libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


# -- the system-call filter --------------------------------------------------------------------
# (audit arch, syscall numbers): only these two architectures are known; elsewhere no filter
_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NUMBERS = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166,
        "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "swapon": 167, "swapoff": 168,
        "reboot": 169, "acct": 163, "quotactl": 179, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "syslog": 103, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "pidfd_getfd": 438, "clone3": 435, "socket": 41, "clone": 56,
        "capset": 126, "sched_setaffinity": 203,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 104, "kexec_file_load": 294,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225,
        "reboot": 142, "acct": 89, "quotactl": 60, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "syslog": 116, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
        "fspick": 433, "mount_setattr": 442, "pidfd_getfd": 438, "clone3": 435, "socket": 198, "clone": 220,
        "capset": 91, "sched_setaffinity": 122,
    },
}  # fmt: skip
_MACHINE = platform.machine()
_SYSCALLS = _NUMBERS.get(_MACHINE, {"pivot_root": 155, "capset": 126})
_SPECIAL = ("socket", "clone", "clone3", "capset")  # filtered by argument, or answered ENOSYS
AF_UNIX = 1


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program() -> bytes | None:
    """The BPF filter: refused calls fail with EPERM; `socket` is allowed for AF_UNIX only
    (EAFNOSUPPORT otherwise); `clone` with a namespace flag fails; `clone3` answers ENOSYS (its
    flags are out of a filter's reach; C libraries then fall back to `clone`); a foreign
    architecture or x32 call kills the process. None on an architecture not listed."""
    if _MACHINE not in _ARCH:
        return None
    numbers = _NUMBERS[_MACHINE]
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    deny = 0x00050000 | errno.EPERM
    denied = [n for name, n in numbers.items() if name not in _SPECIAL]
    code = [_instruction(ld, 0, 0, 4), _instruction(jeq, 1, 0, _ARCH[_MACHINE]), _instruction(ret, 0, 0, kill)]
    code.append(_instruction(ld, 0, 0, 0))
    if _MACHINE == "x86_64":
        code += [_instruction(jge, 0, 1, 0x40000000), _instruction(ret, 0, 0, kill)]
    for number in denied:
        code += [_instruction(jeq, 0, 1, number), _instruction(ret, 0, 0, deny)]
    code += [_instruction(jeq, 0, 1, numbers["clone3"]), _instruction(ret, 0, 0, 0x00050000 | errno.ENOSYS)]
    code += [_instruction(jeq, 0, 1, numbers["capset"]), _instruction(ret, 0, 0, deny)]
    # socket(domain, ...): AF_UNIX only
    code += [_instruction(jeq, 0, 4, numbers["socket"]), _instruction(ld, 0, 0, 16)]
    code += [_instruction(jeq, 0, 1, AF_UNIX), _instruction(ret, 0, 0, allow)]
    code.append(_instruction(ret, 0, 0, 0x00050000 | errno.EAFNOSUPPORT))
    # clone(flags, ...): no new namespaces
    code += [_instruction(jeq, 0, 3, numbers["clone"]), _instruction(ld, 0, 0, 16)]
    code += [_instruction(jset, 0, 1, NAMESPACE_FLAGS), _instruction(ret, 0, 0, deny)]
    code.append(_instruction(ret, 0, 0, allow))
    return b"".join(code)


def install_filter() -> bool:
    """Load the seccomp filter into this process (inherited by all it starts); False where
    there is none for this architecture. Needs no_new_privs (`drop_privileges`) first."""
    program = seccomp_program()
    if program is None:
        return False
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HxxxxxxQ", len(program) // 8, ctypes.addressof(buffer))
    _check(_libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0), "seccomp")
    return True


if __name__ == "__main__":
    _probe_here(sys.argv[1])
