"""A single-node SLURM on this machine, for the cluster tests.

Debian's ``slurm-wlm`` and ``munge`` (installed by ``bin/spica install``), three
daemons started by hand without systemd: ``munged`` (as the ``munge`` user),
``slurmctld`` and ``slurmd`` (as root), on localhost. Everything they write
(state, spool, logs, the munge socket, the job completion log) stays in one
scratch folder; the configuration, made from ``slurm.conf.in`` beside this
file, goes to ``/etc/slurm/slurm.conf`` because job steps do not see
``SLURM_CONF`` — only when that file is absent or one of ours (its first line
is :data:`MARKER`), and it is removed again by :meth:`SingleNodeSlurm.stop`.

SLURM's own record of the jobs is the ``jobcomp/filetxt`` log: one line per
finished job with its ``JobId``, ``Name``, ``JobState`` and ``ExitCode``, no
accounting daemon needed (:meth:`SingleNodeSlurm.finished_jobs`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["MARKER", "SLURM_CONF", "SingleNodeSlurm", "unavailable"]

TEMPLATE = Path(__file__).with_name("slurm.conf.in")
MARKER = "# spica-test-slurm"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
SBIN = ("/usr/sbin", "/usr/bin")


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (f"{d}/{name}" for d in SBIN if os.access(f"{d}/{name}", os.X_OK)), None)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def unavailable(ports: tuple[int, int] = (6817, 6818)) -> str | None:
    """Why a test SLURM cannot be started here (``None`` if it can)."""
    missing = [name for name in BINARIES if _which(name) is None]
    if missing:
        return f"SLURM/munge binaries missing: {missing} (run `bin/spica install`)"
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd with SlurmUser=root needs root"
    if not Path("/etc/munge/munge.key").is_file():
        return "/etc/munge/munge.key absent (the munge package creates it)"
    if SLURM_CONF.exists() and not SLURM_CONF.read_text().startswith(MARKER):
        return f"{SLURM_CONF} belongs to a SLURM of this machine: not touching it"
    busy = [port for port in ports if not _port_free(port)]
    if busy:
        return f"SLURM ports {busy} in use (a SLURM already runs here)"
    return None


class SingleNodeSlurm:
    """Start, query and stop the single-node SLURM.

    Parameters
    ----------
    partition
        Name of its only partition (the cluster profile's ``slurm_partition``).
    memory_mb
        ``RealMemory`` of the node: must cover every job's ``--mem``.
    """

    def __init__(self, *, partition: str = "main", memory_mb: int = 20000,
                 ports: tuple[int, int] = (6817, 6818)) -> None:
        self.partition = partition
        self.memory_mb = memory_mb
        self.ports = ports
        self.base = Path(tempfile.mkdtemp(prefix="spica-slurm-"))
        self.jobcomp = self.base / "jobcomp.log"
        self.pids: dict[str, int] = {}
        self._wrote_conf = False

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 60) -> None:
        """Write the configuration, start munged, slurmctld and slurmd; wait for the node."""
        base = self.base
        base.chmod(0o755)  # munged (user munge) must reach its socket folder
        for sub in ("state", "spool", "log", "munge/key", "munge/log"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        key = base / "munge" / "key" / "munge.key"
        shutil.copyfile("/etc/munge/munge.key", key)
        shutil.chown(base / "munge", "munge", "munge")
        for path in (base / "munge" / "key", base / "munge" / "log", key):
            shutil.chown(path, "munge", "munge")
        (base / "munge").chmod(0o755)
        (base / "munge" / "key").chmod(0o700)
        (base / "munge" / "log").chmod(0o700)
        key.chmod(0o400)
        text = TEMPLATE.read_text().format(
            hostname=socket.gethostname(), base=base, cpus=os.cpu_count() or 1,
            memory_mb=self.memory_mb, partition=self.partition,
            ctld_port=self.ports[0], slurmd_port=self.ports[1])
        assert text.startswith(MARKER)
        (base / "slurm.conf").write_text(text)
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(text)
        self._wrote_conf = True
        munge = base / "munge"
        self._daemon("munged", ["runuser", "-u", "munge", "--", _which("munged"),
                                f"--key-file={key}", f"--socket={munge}/munge.socket.2",
                                f"--pid-file={munge}/munged.pid",
                                f"--log-file={munge}/log/munged.log",
                                f"--seed-file={munge}/log/munged.seed"],
                     munge / "munged.pid")
        self._daemon("slurmctld", [_which("slurmctld"), "-f", str(SLURM_CONF)],
                     base / "slurmctld.pid")
        self._daemon("slurmd", [_which("slurmd"), "-f", str(SLURM_CONF)], base / "slurmd.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                                   check=False)
            if state.returncode == 0 and state.stdout.strip() in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node never became idle; see {base}/log")

    def _daemon(self, name: str, command: list[str], pidfile: Path, timeout: float = 20) -> None:
        """Run a self-daemonising command and record the daemon's pid from its pid file."""
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError(f"{name} failed to start: {run.stderr or run.stdout}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pidfile.is_file() and pidfile.read_text().strip():
                self.pids[name] = int(pidfile.read_text().split()[0])
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} wrote no pid file {pidfile}")

    def stop(self, timeout: float = 20) -> None:
        """Stop the daemons this object started (by pid), remove our /etc/slurm/slurm.conf."""
        try:
            for name in ("slurmd", "slurmctld", "munged"):
                pid = self.pids.pop(name, None)
                if pid is None:
                    continue
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.1)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        finally:
            if self._wrote_conf and SLURM_CONF.is_file() and \
                    SLURM_CONF.read_text().startswith(MARKER):
                SLURM_CONF.unlink()
            self._wrote_conf = False

    def cleanup(self) -> None:
        """Remove the scratch folder (after :meth:`stop`)."""
        shutil.rmtree(self.base, ignore_errors=True)

    # -------------------------------------------------------------- queries
    def finished_jobs(self) -> list[dict[str, str]]:
        """SLURM's record of every finished job: one ``{field: value}`` per job."""
        if not self.jobcomp.is_file():
            return []
        jobs = []
        for line in self.jobcomp.read_text().splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if "JobId" in fields:
                jobs.append(fields)
        return jobs

    def queue(self) -> list[dict[str, str]]:
        """Jobs pending or running now: JobId, State, Comment (the plugin puts the rule there)."""
        run = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], capture_output=True,
                             text=True, check=True)
        return [dict(zip(("JobId", "State", "Comment"), line.split("|", 2)))
                for line in run.stdout.splitlines() if line.strip()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False
