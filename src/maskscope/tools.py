"""External command-line tools the pipeline needs, with the apt-get line that installs them."""

from __future__ import annotations

import shutil

from maskscope.errors import ToolMissingError


def require_tool(executable: str, apt_package: str) -> str:
    """Return the path of `executable`, or fail with the command that installs it."""
    path = shutil.which(executable)
    if path is None:
        raise ToolMissingError(
            f"'{executable}' is not installed or not on PATH; install it with: apt-get install -y {apt_package}"
        )
    return path
