"""The SLURM pre-flight check's messages (the cluster itself: tests/test_slurm.py)."""

from __future__ import annotations

import shutil

import pytest

from maskscope.pipeline.cluster import ClusterError, check_slurm


def test_missing_client_commands_name_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match=r"'scontrol' is not on PATH.*apt-get install -y slurm-client"):
        check_slurm()


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="SLURM's client commands are not installed")
def test_a_controller_nobody_runs_is_reported_with_what_to_start(monkeypatch, tmp_path):
    from slurm_cluster import free_port

    conf = tmp_path / "slurm.conf"
    conf.write_text(
        f"ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={free_port()}\n"
        "AuthType=auth/none\nNodeName=n CPUs=1\nPartitionName=p Nodes=n\n"
    )
    monkeypatch.setenv("SLURM_CONF", str(conf))
    with pytest.raises(ClusterError) as raised:
        check_slurm(timeout=30)
    message = str(raised.value)
    assert "`scontrol ping`: Slurmctld(primary) at" in message and "is DOWN" in message
    assert "start slurmctld" in message and str(conf) in message and "nothing was submitted" in message
