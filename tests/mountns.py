"""Real storage faults for tests: a full disk, a read-only home, inside a private mount namespace.

Nothing is mocked: a small tmpfs really fills up (ENOSPC) and a read-only bind mount
really refuses writes (EROFS). The mounts live in a mount namespace of their own, held
open by a sleeping process, so they never touch the machine's real mounts and vanish
with the test. Commands run inside it through ``nsenter``; the test itself reaches the
namespace's files through ``/proc/<pid>/root`` (:meth:`MountNamespace.inside`).

Needs root, or unprivileged user namespaces (then ``unshare --map-root-user`` is used).
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


class MountNamespace:
    def __init__(self) -> None:
        self.rootless = os.geteuid() != 0
        user = ["--user", "--map-root-user"] if self.rootless else []
        self.proc = subprocess.Popen(
            ["unshare", *user, "--mount", "--propagation", "private", "sh", "-c", "echo ready; exec sleep 3600"],
            stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline().strip()
        assert line == "ready", "could not create a mount namespace (needs root or user namespaces)"

    def enter(self, command: list[str]) -> list[str]:
        """``command`` run inside the namespace."""
        user = ["--user", "--preserve-credentials"] if self.rootless else []
        return ["nsenter", "-t", str(self.proc.pid), *user, "--mount", "--", *command]

    def run(self, *command: str) -> None:
        subprocess.run(self.enter(list(command)), check=True, capture_output=True, timeout=30)

    def tmpfs(self, path: Path, size: str) -> None:
        """A file system of ``size`` (e.g. "4m") at ``path``, empty, mode 0700."""
        self.run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))

    def read_only(self, path: Path) -> None:
        """``path`` as it is, but read-only (a bind mount of itself)."""
        self.run("mount", "--bind", str(path), str(path))
        self.run("mount", "-o", "remount,bind,ro", str(path))

    def inside(self, path: Path) -> Path:
        """``path`` as the namespace sees it, for the test process to read and write."""
        return Path(f"/proc/{self.proc.pid}/root{Path(path).resolve()}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def fill(directory: Path, leave: int = 0) -> Path:
    """Write a file in ``directory`` until its file system is full (less ``leave`` bytes)."""
    path = directory / "filler"
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize - leave
    with open(path, "wb") as handle:
        block = b"\0" * (1 << 16)
        try:
            while free > 0:
                free -= handle.write(block[: max(min(len(block), free), 1)])
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return path
