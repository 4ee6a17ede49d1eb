"""Helpers for the privilege-separation tests: process tree, /proc status,
and borrowing a child's descriptor with pidfd_getfd (root only)."""

import ctypes
import os
import socket

SYS_pidfd_open = 434
SYS_pidfd_getfd = 438
_libc = ctypes.CDLL(None, use_errno=True)

IS_ROOT = os.geteuid() == 0


def status(pid):
    """/proc/PID/status as a dict of strings."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def caps(pid, which):
    return int(status(pid)[which], 16)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def getfd(pid, fd):
    """A copy of another process's fd (needs ptrace rights: root)."""
    pidfd = _libc.syscall(SYS_pidfd_open, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        r = _libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if r < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return r
    finally:
        os.close(pidfd)


def socket_of(pid, fd):
    return socket.socket(fileno=getfd(pid, fd))


def fd_targets(pid):
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass
    return out


def tcp_fd_to(pid, port):
    """The fd number in pid of a TCP socket connected to 127.0.0.1:port."""
    for fd, target in fd_targets(pid).items():
        if not target.startswith("socket:"):
            continue
        try:
            s = socket_of(pid, fd)
        except OSError:
            continue
        try:
            if s.type == socket.SOCK_STREAM and s.family == socket.AF_INET:
                try:
                    if s.getpeername()[1] == port:
                        return fd, s
                except OSError:
                    pass
            s.close()
        except OSError:
            s.close()
    return None, None
