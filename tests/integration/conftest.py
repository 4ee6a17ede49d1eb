"""The fixtures of the black-box tests; what they share otherwise is in
harness.py."""

import os
import subprocess

import pytest

from harness import Daemon, HashServer, HTTPFiles, ROOT, start_proxy


def pytest_sessionstart(session):
    """Started as root, the daemon runs its children as 'neosocksd' and
    'neosocksd-rules' (sandbox/neosocksd.sysusers) and refuses to start
    without them: create them when missing, as on a fresh CI machine."""
    if os.geteuid() == 0:
        subprocess.run([os.path.join(ROOT, "mk", "users.sh")], check=True)


@pytest.fixture
def daemon_factory(tmp_path):
    """daemon_factory(args...) -> started Daemon; all are stopped at teardown
    and a sanitizer report in any daemon's log fails the test."""
    started = []

    def make(*args, env=None, wait_ready=True, binary=None, workers=1):
        d = Daemon(args, env=env, binary=binary, tmpdir=str(tmp_path), workers=workers)
        started.append(d)
        return d.start(wait_ready=wait_ready)

    yield make
    reports = []
    for d in started:
        d.close()
        rep = d.sanitizer_report()
        if rep:
            reports.append(rep)
    if reports:
        pytest.fail("sanitizer report in daemon log:\n" + reports[0][-6000:])


@pytest.fixture
def proxy(daemon_factory):
    """A daemon serving SOCKS on .socks and HTTP on .http."""
    return start_proxy(daemon_factory)


@pytest.fixture(scope="session")
def http_target():
    s = HTTPFiles()
    yield s
    s.close()


@pytest.fixture(scope="session")
def hash_server():
    s = HashServer()
    yield s
    s.close()


@pytest.fixture(scope="session")
def hash_server6():
    s = HashServer("::1")
    yield s
    s.close()
