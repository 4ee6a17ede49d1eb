"""Command line: help, version, flag errors, --opt=value, --dump-config."""

import subprocess

import pytest

from harness import BIN, curl, free_port


def run(*args, timeout=10):
    return subprocess.run([BIN] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_help_to_stdout_exit_0():
    p = run("--help")
    assert p.returncode == 0
    out = p.stdout.decode()
    assert "usage:" in out and "-l, --listen" in out and "--block-outbound" in out
    assert p.stderr == b""
    assert run("-h").returncode == 0


def test_version():
    p = run("--version")
    assert p.returncode == 0
    assert p.stdout.decode().startswith("neosocksd ")


@pytest.mark.parametrize("args,needle", [
    (["--frobnicate"], "unknown option '--frobnicate'"),
    (["-l"], "--listen requires a value"),
    (["-l", "127.0.0.1:1080", "-t", "abc"], "--timeout: 'abc'"),
    (["-l", "127.0.0.1:1080", "-t", "4"], "--timeout: '4'"),
    (["-l", "127.0.0.1:1080", "-t", "86401"], "--timeout"),
    (["-l", "127.0.0.1:1080", "-m", "-1"], "--max-sessions: '-1'"),
    (["-l", "127.0.0.1:1080", "--loglevel", "9"], "--loglevel: '9'"),
    (["-l", "127.0.0.1:1080", "--max-startups", "1:2"], "--max-startups: '1:2'"),
    (["-l", "127.0.0.1:1080", "--max-startups", "10:101:20"], "--max-startups"),
    (["-l", "127.0.0.1:1080", "--max-startups", "30:10:20"], "start 30 is greater than full 20"),
    (["-l", "127.0.0.1:1080", "--block-outbound", "loopback,bogus"], "unknown class 'bogus'"),
    (["-l", "127.0.0.1:1080", "--block-outbound", "local,global"], "local and global"),
    (["-l", "127.0.0.1:1080", "--log", "nowhere"], "--log: 'nowhere'"),
    (["-l", "127.0.0.1:1080", "-u", "no-such-user-xyz"], "no such user 'no-such-user-xyz'"),
    (["-l", "127.0.0.1:1080", "-x", "socks://127.0.0.1:1"],
     "-x: unknown proxy scheme (use socks4://, socks4a://, socks5://, socks5h:// or http://)"),
    (["-l", "not-an-address"], "-l: invalid listen address 'not-an-address'"),
    (["-l", "127.0.0.1:1080", "-f", "nohost"], "-f: invalid forward address"),
    (["--http", "127.0.0.1:1", "-l", "127.0.0.1:2", "-f", "127.0.0.1:3"],
     "--http is incompatible with -f"),
    ([], "listen address is not specified"),
    (["-l", "127.0.0.1:1080", "--reuseport=yes"], "--reuseport takes no value"),
    (["-l", "127.0.0.1:1080", "stray"], "unexpected argument 'stray'"),
])
def test_bad_flags_exit_nonzero_naming_the_flag(args, needle):
    p = run(*args)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert needle in err, err
    assert "--help" in err  # a hint


def test_opt_equals_value_and_dump_config():
    p = run("--listen=127.0.0.1:1080", "--http", "127.0.0.1:8080", "-t", "7.5",
            "--max-startups=10:30:100", "--block-outbound=loopback,local",
            "-x", "socks5://u:secret@127.0.0.1:1081", "--dump-config")
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert out.startswith("return {\n") and out.rstrip().endswith("}")
    assert 'listen = "127.0.0.1:1080",' in out
    assert 'http_listen = "127.0.0.1:8080",' in out
    assert "timeout = 7.5," in out
    assert "startup_limit_start = 10," in out and "startup_limit_full = 100," in out
    assert "block_loopback = true," in out and "block_multicast = false," in out
    assert "block_local = true," in out
    assert "forward = nil," in out


def test_dump_config_output_is_a_config_file(tmp_path):
    """What --dump-config prints loads back with -c (settings that only the
    command line may give are comments) and gives the same settings."""
    p = run("-l", "127.0.0.1:1080", "--http", "127.0.0.1:8080", "-t", "7.5",
            "--api", "127.0.0.1:9080", "--api-max-conns", "9", "--dump-config")
    assert p.returncode == 0, p.stderr
    conf = tmp_path / "dumped.lua"
    conf.write_bytes(p.stdout)
    q = run("-c", str(conf), "--dump-config")
    assert q.returncode == 0, q.stderr
    assert q.stdout == p.stdout
    assert b"-- (command line only) jail = " in p.stdout


def test_listen_port_in_use_fails_clearly(daemon_factory):
    port = free_port()
    daemon_factory("-l", f"127.0.0.1:{port}")
    p = run("-l", f"127.0.0.1:{port}")
    assert p.returncode != 0
    assert f"listen on 127.0.0.1:{port}: Address in use" in p.stderr.decode() or \
        "Address already in use" in p.stderr.decode()


def test_http_only_listener(daemon_factory, http_target):
    """--http without an address turns -l into an HTTP proxy listener."""
    port = free_port()
    daemon_factory("-l", f"127.0.0.1:{port}", "--http")
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{port}",
                        f"http://127.0.0.1:{http_target.port}/")
    assert rc == 0, err
    assert out == b"hello from the target\n"


def test_dump_config_keeps_bare_http(daemon_factory, http_target, tmp_path):
    """Regression: --dump-config lost a bare --http, so a daemon started
    from the dumped config served SOCKS on the -l port instead of HTTP."""
    port = free_port()
    p = run("-l", f"127.0.0.1:{port}", "--http", "--dump-config")
    assert p.returncode == 0, p.stderr
    assert b"    http_only = true,\n" in p.stdout
    conf = tmp_path / "dumped.lua"
    conf.write_bytes(p.stdout)
    q = run("-c", str(conf), "--dump-config")
    assert q.returncode == 0, q.stderr
    assert q.stdout == p.stdout
    daemon_factory("-c", str(conf))
    rc, out, err = curl("-p", "-x", f"http://127.0.0.1:{port}",
                        f"http://127.0.0.1:{http_target.port}/")
    assert rc == 0, err
    assert out == b"hello from the target\n"
