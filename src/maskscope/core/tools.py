"""External command-line tools the pipeline needs, with the apt-get line that installs them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from maskscope.core.errors import ToolMissingError


def require_tool(executable: str, apt_package: str) -> str:
    """Return the path of `executable`, or fail with the command that installs it."""
    path = shutil.which(executable)
    if path is None:
        raise ToolMissingError(
            f"'{executable}' is not installed or not on PATH; install it with: apt-get install -y {apt_package}"
        )
    return path


def debian_package_version(package: str) -> str:
    """The installed version of a Debian package, or fail with the apt-get line that installs it."""
    dpkg_query = require_tool("dpkg-query", "dpkg")
    result = subprocess.run(
        [dpkg_query, "-W", "-f=${db:Status-Status} ${Version}", package],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    status, _, version = result.stdout.strip().partition(" ")
    if result.returncode != 0 or status != "installed" or not version:
        raise ToolMissingError(
            f"Debian package {package} is not installed; install it with: apt-get install -y {package}"
        )
    return version


def debian_package_files(package: str) -> list[Path]:
    """The files an installed Debian package put on disk, or fail with the apt-get line that installs it."""
    dpkg = require_tool("dpkg", "dpkg")
    result = subprocess.run([dpkg, "-L", package], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ToolMissingError(
            f"Debian package {package} is not installed; install it with: apt-get install -y {package}"
        )
    return [Path(line) for line in result.stdout.splitlines() if Path(line).is_file()]
