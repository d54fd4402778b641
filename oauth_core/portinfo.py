"""Who holds a TCP port, where the operating system will say.

Used only to make the busy-port message useful ("port 1455 (held by code, pid 4242)").
Linux exposes listening sockets in ``/proc/net/tcp*`` and their owners through
``/proc/<pid>/fd``; elsewhere, or without permission, the answer is ``None`` and the
message simply names the port.
"""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != _LISTEN:
                continue
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                inodes.add(parts[9])
    return inodes


def describe_holder(port: int) -> str | None:
    """``"held by NAME, pid N"`` for the process listening on ``port``, if it can be found."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    proc = Path("/proc")
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    name = (entry / "comm").read_text().strip()
                    return f"held by {name}, pid {entry.name}"
        except OSError:
            continue
    return "held by another process"
