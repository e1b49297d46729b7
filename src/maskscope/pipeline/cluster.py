"""Pre-flight checks before Snakemake submits the DAG to a SLURM cluster.

`snakemake --profile workflow/profiles/slurm` calls `check_slurm` first (the Snakefile's onstart,
before the MLflow parent run and before any job): without it, a controller that is down shows up
as one failed sbatch per ready job, and an accounting daemon that is down as a run that never
learns its jobs ended (the executor plugin polls job states with `sacct`, which asks slurmdbd).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from maskscope.core.errors import MaskscopeError

DEFAULT_SLURM_CONF = "/etc/slurm/slurm.conf"  # Debian's slurm-wlm


class ClusterError(MaskscopeError):
    """The cluster cannot take the DAG's jobs yet."""


def _slurm_conf() -> str:
    conf = os.environ.get("SLURM_CONF") or DEFAULT_SLURM_CONF
    return conf if Path(conf).is_file() else f"{conf}, which does not exist"


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None


def _answer(result: subprocess.CompletedProcess | None, timeout: float) -> str:
    """The first line a command said (scontrol frames its DOWN in asterisks), or why there is none."""
    if result is None:
        return f"no answer within {timeout:.0f} s"
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    said = [line for line in lines if line and not line.startswith("*")]
    return said[0] if said else f"exit status {result.returncode}"


def check_slurm(status_command: str | None = "sacct", timeout: float = 30.0) -> None:
    """Fail, naming what to start, unless slurmctld answers and (for `sacct` polling) so does accounting."""
    conf = _slurm_conf()
    for tool in ("scontrol", "sbatch", *([status_command] if status_command else [])):
        if shutil.which(tool) is None:
            raise ClusterError(
                f"'{tool}' is not on PATH: the slurm profile submits jobs with SLURM's client commands; "
                "install them (apt-get install -y slurm-client) on the machine that runs snakemake"
            )
    ping = _run(["scontrol", "ping"], timeout)
    if ping is None or ping.returncode != 0 or " is UP" not in ping.stdout:
        raise ClusterError(
            f"the SLURM controller does not answer (`scontrol ping`: {_answer(ping, timeout)}): start slurmctld on the "
            f"controller host (`systemctl start slurmctld`, or `slurmctld` as root) and check that SLURM_CONF "
            f"({conf}) is this cluster's slurm.conf; nothing was submitted"
        )
    if status_command == "sacct":
        # the query the executor plugin polls with, limited to the last minute
        accounting = _run(
            ["sacct", "-X", "-n", "--parsable2", "--starttime", "now-60", "--format", "JobIdRaw"], timeout
        )
        if accounting is None or accounting.returncode != 0:
            raise ClusterError(
                f"SLURM job accounting does not answer (`sacct`: {_answer(accounting, timeout)}), and the "
                "executor plugin polls job states with sacct: start slurmdbd (`systemctl start slurmdbd`; "
                f"slurm.conf in {conf} needs AccountingStorageType=accounting_storage/slurmdbd), or poll with "
                "squeue instead (`--slurm-status-command squeue`, which the plugin keeps to only while slurm.conf's "
                "MinJobAge is at least 3 times --slurm-init-seconds-before-status-checks); nothing was submitted"
            )
