"""A real Ray cluster on loopback for the tests and bench/atlas.py, and its sure end.

`ray start --head --node-ip-address 127.0.0.1` in a temporary folder of its own; `stop()`
ends exactly the processes of that cluster (those whose command line names its folder, and
their descendants: the workers), never another Ray on the machine, as a broad `ray stop`
would. Ray otherwise swaps a loopback node address for the machine's own on Linux:
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps it on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


class LoopbackCluster:
    """`with LoopbackCluster(cpus=2) as cluster:` ... `cluster.address` (127.0.0.1:PORT)."""

    def __init__(self, cpus: int = 2) -> None:
        self.cpus = cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Short: Ray's socket paths must fit in 107 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="cpray-", dir="/tmp"))
        # A token of its own (Ray's token authentication), in its folder: the builds that
        # join it get the same environment.
        token = self.folder / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {
            **os.environ,
            **LOOPBACK_ENV,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            # Its files, and the address file `--ray-address auto` reads, in its folder.
            "RAY_TMPDIR": str(self.folder),
        }

    def start(self) -> LoopbackCluster:
        atexit.register(self.stop)
        subprocess.run(
            [
                "ray", "start", "--head",
                "--node-ip-address", "127.0.0.1",
                "--port", str(self.port),
                "--num-cpus", str(self.cpus),
                "--num-gpus", "0",
                "--include-dashboard", "false",
                "--disable-usage-stats",
            ],
            env=self.env, check=True, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        return self

    def pids(self) -> list[int]:
        """The cluster's processes: those naming its folder, and their descendants."""
        mine = []
        needle = str(self.folder).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "cmdline").read_bytes():
                    mine.append(int(entry.name))
            except OSError:
                continue
        tree, out, todo = _children(), set(), list(mine)
        while todo:
            pid = todo.pop()
            if pid not in out:
                out.add(pid)
                todo += tree.get(pid, [])
        return sorted(out)

    def task_workers(self) -> list[int]:
        """Workers running a circuitpress task now (Ray titles them ray::_run_task)."""
        found = []
        for pid in self.pids():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_run_task"):
                    found.append(pid)
            except OSError:
                continue
        return found

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline and self.pids():
                time.sleep(0.2)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> LoopbackCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_leftovers() -> int:
    """End the clusters of killed test runs (their folders /tmp/cpray-*): `.ci/run` calls it
    on exit, so that a run stopped mid-test leaves no Ray behind. Returns how many."""
    count = 0
    for folder in Path("/tmp").glob("cpray-*"):
        cluster = LoopbackCluster.__new__(LoopbackCluster)
        cluster.folder = folder
        cluster.stop()
        count += 1
    return count


if __name__ == "__main__":
    stop_leftovers()
