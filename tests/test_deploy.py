"""The deployment files in deploy/: what can be checked on this machine.

nginx.conf runs for real in front of two instances in test_instances.py.
The systemd unit is checked by systemd-analyze; the container file cannot
be built here (no container engine runs), so only what it names is checked.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from audioserver.config import DEFAULT_SHUTDOWN_TIMEOUT, ENVIRONMENT

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
HARDENING = ["User=audioserver", "NoNewPrivileges=yes", "ProtectSystem=strict",
             "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
             "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"]


def test_the_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = (DEPLOY / "audioserver.service").read_text()
    # The one path that must exist for verify: the interpreter's.
    unit = unit.replace("/opt/audioserver/bin/python", sys.executable)
    path = tmp_path / "audioserver.service"
    path.write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # Unknown keys and bad values are only warnings: there must be none.
    assert str(path) not in done.stderr + done.stdout, done.stderr


def test_the_systemd_unit_is_hardened_and_waits_for_the_drain():
    unit = (DEPLOY / "audioserver.service").read_text()
    for option in HARDENING:
        assert option in unit
    stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE).group(1))
    assert stop > DEFAULT_SHUTDOWN_TIMEOUT + 5


def test_the_deployment_files_name_only_real_variables():
    known = {variable for variable, _ in ENVIRONMENT.values()}
    for name in ["audioserver.service", "Containerfile"]:
        named = set(re.findall(r"AUDIOSERVER_[A-Z_]+", (DEPLOY / name).read_text()))
        assert named and named <= known, (name, named - known)


def test_the_container_checks_a_route_that_exists():
    containerfile = (DEPLOY / "Containerfile").read_text()
    assert "/healthz" in containerfile
    assert re.search(r"^USER audioserver$", containerfile, re.MULTILINE)
