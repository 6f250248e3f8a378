"""A real full disk for tests: a small tmpfs that only one child process sees (Linux user and mount namespaces).

Nothing is filled on the machine's own disks, and the mount goes away with the child.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Mount a tmpfs with options $1 at $2, fill it with $3 (0 or 1), run the Python script $5 with $4, then list what
# is left on the tmpfs (its files, after a marker line) and exit with the script's status.
_SHELL = """
mount -t tmpfs -o "$1" tmpfs "$2" || exit 97
[ "$3" = 1 ] && cat /dev/zero > "$2/filler" 2>/dev/null
"$4" "$5"
status=$?
echo "left on the disk:"
find "$2" -type f -printf '%P\n'
exit $status
"""


@functools.cache
def _namespaces_work() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /tmp"]
    return subprocess.run(probe, capture_output=True).returncode == 0


def run_on_a_full_disk(
    code: str, disk: Path, *, size_kib: int, fill: bool = False, files: int | None = None, timeout: int = 300
) -> tuple:
    """Run Python ``code`` with a tmpfs of ``size_kib`` at ``disk``: filled first with ``fill``; with ``files``,
    room for that many files and folders (its own root counts one), after which creating one finds it full.

    Returns (exit status, stderr, the files left on the tmpfs afterwards, relative to ``disk``). Skips the test
    where this system allows no unprivileged user namespaces.
    """
    if not _namespaces_work():
        pytest.skip("needs unprivileged user and mount namespaces (unshare) for a small full tmpfs")
    disk.mkdir(parents=True)
    script = disk.parent / f"{disk.name}_job.py"
    script.write_text(code)
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _SHELL, "sh"]
    options = f"size={size_kib}k" + (f",nr_inodes={files}" if files else "")
    command += [options, str(disk), "1" if fill else "0", sys.executable, str(script)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert result.returncode != 97, result.stderr
    left = result.stdout.split("left on the disk:\n", 1)[1].split()
    return result.returncode, result.stderr, left
