"""Name resolution through evdns against a local DNS server, and -4/-6."""

import os
import socket
import struct
import threading

import pytest

from harness import free_ports, recv_all, ROOT, socks5_connect


class TinyDNS:
    """A UDP DNS server on 127.0.0.1 answering A/AAAA for names under
    ".test." with 127.0.0.1 / ::1, NXDOMAIN otherwise. Counts queries."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                return
            tid, flags, qd = struct.unpack(">HHH", q[:6])
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode())
                i += 1 + q[i]
            qtype, = struct.unpack(">H", q[i + 1:i + 3])
            question = q[12:i + 5]
            name = ".".join(labels).lower()
            self.queries.append((name, qtype))
            ok = name.endswith(".test")
            answers = b""
            if ok and qtype == 1:
                answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
            elif ok and qtype == 28:
                answers = b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 60, 16) + \
                    socket.inet_pton(socket.AF_INET6, "::1")
            rcode = 0 if ok else 3
            hdr = struct.pack(">HHHHHH", tid, 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
            self.sock.sendto(hdr + question + answers, peer)

    def close(self):
        self.sock.close()


@pytest.fixture
def dns():
    d = TinyDNS()
    yield d
    d.close()


def _v4_only_server():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def _v6_only_server():
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::1", 0))
    s.listen(8)
    return s


def _served_by(srv, port, host):
    s, rep = socks5_connect(port, host, srv.getsockname()[1])
    if rep != 0:
        s.close()
        return rep
    c, peer = srv.accept()
    c.sendall(b"hi")
    c.close()
    assert recv_all(s) == b"hi"
    s.close()
    return 0


def test_name_resolved_by_dns_query(daemon_factory, dns):
    port, = free_ports(1)
    daemon_factory("-l", f"127.0.0.1:{port}", "--nameserver", f"127.0.0.1:{dns.port}", "-4")
    srv = _v4_only_server()
    assert _served_by(srv, port, "www.example.test") == 0
    assert ("www.example.test", 1) in dns.queries
    # NXDOMAIN: host unreachable
    s, rep = socks5_connect(port, "missing.example", 80)
    s.close()
    assert rep == 0x04
    assert ("missing.example", 1) in dns.queries
    srv.close()


def test_dns_counters_in_stats_and_metrics(daemon_factory, dns):
    """/stats "Name Resolves" and the dns_* metrics count the front's queries
    and answers: one name found, one NXDOMAIN, literals not counted."""
    from harness import Api, parse_prometheus, sample, stats_value
    port, api = free_ports(2)
    d = daemon_factory("-l", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{api}",
                       "--nameserver", f"127.0.0.1:{dns.port}", "-4")
    d.api = Api(port=api)
    srv = _v4_only_server()
    assert _served_by(srv, port, "www.example.test") == 0
    assert _served_by(srv, port, "127.0.0.1") == 0
    s, rep = socks5_connect(port, "missing.example", 80)
    s.close()
    assert rep == 0x04
    srv.close()
    fams = parse_prometheus(d.api.curl("/metrics").text)
    assert sample(fams, "neosocksd_dns_queries_total") == 2
    assert sample(fams, "neosocksd_dns_success_total") == 1
    assert stats_value(d.api.curl("/stats").text, "Name Resolves") == "1 (+1)"


def test_ipv6_preference(daemon_factory, dns):
    """-6 resolves to IPv6 only: a v6-only target is reached, a v4-only one
    is not (the name resolves to ::1 there)."""
    port, = free_ports(1)
    daemon_factory("-l", f"127.0.0.1:{port}", "--nameserver", f"127.0.0.1:{dns.port}", "-6")
    v6, v4 = _v6_only_server(), _v4_only_server()
    assert _served_by(v6, port, "host.test") == 0
    assert ("host.test", 28) in dns.queries
    assert all(qt == 28 for _, qt in dns.queries), dns.queries
    assert _served_by(v4, port, "host.test") == 0x05
    # names from /etc/hosts and localhost follow the preference as well
    assert _served_by(v6, port, "localhost") == 0
    v6.close()
    v4.close()


def test_ipv4_preference(daemon_factory, dns):
    port, = free_ports(1)
    daemon_factory("-l", f"127.0.0.1:{port}", "--nameserver", f"127.0.0.1:{dns.port}", "-4")
    v6, v4 = _v6_only_server(), _v4_only_server()
    assert _served_by(v4, port, "host.test") == 0
    assert all(qt == 1 for _, qt in dns.queries), dns.queries
    assert _served_by(v6, port, "host.test") == 0x05
    assert _served_by(v4, port, "localhost") == 0
    v6.close()
    v4.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
def test_sighup_reloads_hosts(daemon_factory, tmp_path, http_target):
    """SIGHUP reads /etc/hosts again and the running front uses it: the
    daemon runs in a mount namespace of its own where /etc/hosts is a file
    of this test."""
    import shutil
    import signal
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.2 reload.invalid\n")
    socks, = free_ports(1)
    binary = os.environ.get("NEOSOCKSD_BIN") or os.path.join(ROOT, "build", "neosocksd")
    script = (f"mount --bind {hosts} /etc/hosts && exec {binary} "
              f"-l 127.0.0.1:{socks} --loglevel 5")
    d = daemon_factory("-m", "sh", "-c", script, binary=shutil.which("unshare"))
    s, rep = socks5_connect(socks, "reload.invalid", http_target.port)
    s.close()
    assert rep != 0, "127.0.0.2 has no server on that port"
    with open(hosts, "r+") as f:  # same inode: the bind mount sees it
        f.seek(0)
        f.truncate()
        f.write("127.0.0.1 reload.invalid\n")
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log("resolver reloaded")
    s, rep = socks5_connect(socks, "reload.invalid", http_target.port)
    s.close()
    assert rep == 0
