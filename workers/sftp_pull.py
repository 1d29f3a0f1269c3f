"""The SFTP pull of the managed user import: CSV files fetched from the institution's SFTP server
into the Import Drop Folder, where the import takes them like dropped files.

The order is what makes a failure lose nothing: a file is downloaded under a ``.part`` name (which
the import ignores), renamed once complete, and only then moved into ``.bak`` on the server; if
that move fails, the local copy is removed and the file waits on the server for the next run. Only
a worker killed between the two steps leaves both copies, and the file is then imported twice,
which is harmless (rows upsert by unique id); a file is never gone from both sides.

The server must show the host key pinned in System Settings: no key pinned, or another key (of
the same type or not), and ParkOps does not log in at all. asyncssh's ``known_hosts`` takes the
pinned key as the only trusted one; the client class only remembers what the server showed, for
the error message.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import stat
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncssh
from asyncssh.public_key import get_default_public_key_algs

from dashboard.services import ssh_keys
from dashboard.services.user_import import BAK_FOLDER, PARTIAL_SUFFIXES

CONNECT_TIMEOUT_SECONDS = 20
# The whole pull (listing, downloads, moves): a hung server must not hold the task's lock forever.
PULL_TIMEOUT_SECONDS = 15 * 60


@dataclass
class PullResult:
    fetched: list[str] = field(default_factory=list)  # names in the drop folder
    waiting: list[str] = field(default_factory=list)  # names left on the server for the next run
    # Left on the server for good: names that are not UTF-8 (shown with \x escapes), to rename there.
    unreadable: list[str] = field(default_factory=list)


class SftpPullError(Exception):
    """The pull could not be done (or finished); ``str()`` says why in words an admin can act on.
    Files fetched before it (``result.fetched``) are in the drop folder; the others are still on
    the server."""

    def __init__(self, message: str, result: PullResult | None = None) -> None:
        super().__init__(message)
        self.result = result or PullResult()


@dataclass(frozen=True)
class SftpConfig:
    host: str
    port: int
    username: str
    password: str
    private_key: str
    host_key: str
    folder: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class _PinnedClient(asyncssh.SSHClient):
    """Remembers a host key the server showed that is not the pinned one (and refuses it)."""

    def __init__(self) -> None:
        self.refused_key: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.refused_key = key
        return False


def _candidate(name: str) -> bool:
    lower = name.lower()
    return not lower.startswith(".") and lower.endswith(".csv") and "/" not in name and "\x00" not in name


def _local_name(drop: Path, name: str, now: datetime) -> Path:
    """Where a fetched file goes: its own name, or with the time added if a file of that name is
    still waiting in the drop folder (neither is overwritten)."""
    target = drop / name
    if target.exists() or target.with_name(target.name + ".part").exists():
        stem, suffix = os.path.splitext(name)
        target = drop / f"{stem}-pulled-{now:%Y%m%dT%H%M%S%f}{suffix}"
    return target


async def _listing(
    sftp: asyncssh.SFTPClient, folder: str
) -> tuple[dict[str, tuple[int, int]], list[str], list[str]]:
    """Regular CSV files of ``folder`` with (size, mtime), names that look like partial uploads,
    and names that are not UTF-8.

    Listed as bytes: for a str folder asyncssh decodes every name and refuses the whole listing
    for one it cannot (a Latin-1 "Étudiants.csv"), which would stop every run until it is renamed."""
    files: dict[str, tuple[int, int]] = {}
    partial: list[str] = []
    unreadable: list[str] = []
    for entry in await sftp.readdir(folder.encode("utf-8")):
        raw = entry.filename if isinstance(entry.filename, bytes) else entry.filename.encode("utf-8")
        attrs = entry.attrs
        if attrs.permissions is not None and not stat.S_ISREG(attrs.permissions):
            continue
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            if raw.lower().endswith(b".csv") and not raw.startswith(b"."):
                unreadable.append(raw.decode("utf-8", "backslashreplace"))
            continue
        if name.lower().endswith(PARTIAL_SUFFIXES) and not name.startswith("."):
            partial.append(name)
        elif _candidate(name):
            files[name] = (attrs.size or 0, attrs.mtime or 0)
    return files, partial, unreadable


async def _pull(
    config: SftpConfig,
    drop: Path,
    pause: float,
    min_age: float,
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
    result: PullResult,
    client: _PinnedClient,
) -> None:
    pinned = ssh_keys.host_key(config.host_key)
    # The pinned key's algorithms first, then the usual ones: a server that has the pinned type
    # shows that key; one that has not still shows a key (asyncssh would otherwise offer only the
    # pinned type and fail the key exchange, sometimes as a bare "connection lost"), which is then
    # refused as not the pinned one, with its fingerprint in the message.
    host_key_algs = list(dict.fromkeys(alg.decode("ascii") for alg in pinned.sig_algorithms))
    host_key_algs += [
        a.decode("ascii") for a in get_default_public_key_algs() if a.decode("ascii") not in host_key_algs
    ]
    credentials: dict[str, object] = {"client_keys": None, "password": config.password or None}
    if config.private_key:
        credentials["client_keys"] = [ssh_keys.private_key(config.private_key)]
    async with (
        asyncssh.connect(
            config.host,
            config.port,
            username=config.username,
            known_hosts=([pinned], [], []),
            server_host_key_algs=host_key_algs,
            client_factory=lambda: client,
            agent_path=None,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            **credentials,
        ) as conn,
        conn.start_sftp_client() as sftp,
    ):
        folder = config.folder or "."
        first, partial, unreadable = await _listing(sftp, folder)
        result.waiting.extend(partial)
        result.unreadable.extend(sorted(unreadable))
        # Too new: written to less than ``min_age`` ago (by this host's clock; a server clock ahead
        # delays a file by the difference, never for good).
        newest = now().timestamp() - min_age
        result.waiting.extend(sorted(n for n, (_size, mtime) in first.items() if mtime > newest))
        first = {n: look for n, look in first.items() if look[1] <= newest}
        if not first:
            return
        await sleep(pause)
        second, _partial, _unreadable = await _listing(sftp, folder)
        ready = sorted((n for n in first if second.get(n) == first[n]), key=lambda n: (first[n][1], n))
        result.waiting.extend(n for n in first if n not in ready)
        if not ready:
            return
        bak = posixpath.join(folder, BAK_FOLDER)
        if not await sftp.isdir(bak):
            await sftp.mkdir(bak)
        drop.mkdir(parents=True, exist_ok=True)
        for name in ready:
            remote = posixpath.join(folder, name)
            target = _local_name(drop, name, now())
            part = target.with_name(target.name + ".part")
            try:
                await sftp.get(remote, str(part))
                if part.stat().st_size != first[name][0]:
                    # Written to again after the two looks: leave it for the next run.
                    result.waiting.append(name)
                    continue
                with part.open("rb") as handle:
                    os.fsync(handle.fileno())
                part.replace(target)
            finally:
                part.unlink(missing_ok=True)
            moved = posixpath.join(bak, name)
            if await sftp.exists(moved):
                stem, suffix = os.path.splitext(name)
                moved = posixpath.join(bak, f"{stem}-{now():%Y%m%dT%H%M%S%f}{suffix}")
            try:
                await sftp.rename(remote, moved)
            except BaseException:
                # Still on the server: drop the copy, or every run would import the file again.
                target.unlink(missing_ok=True)
                raise
            result.fetched.append(target.name)


def pull(
    config: SftpConfig,
    drop: Path,
    *,
    pause: float,
    min_age: float,
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> PullResult:
    """Fetch every complete CSV file of the remote folder into ``drop`` (oldest first) and move it
    into ``.bak`` on the server. A file modified less than ``min_age`` seconds ago, whose size or
    time changes between two looks ``pause`` seconds apart, or named like a partial upload, stays
    for the next run; so does one whose name is not UTF-8 (``result.unreadable``). Raises
    ``SftpPullError``; ``error.result`` then holds what was fetched before the failure."""
    if not config.host_key.strip():
        raise SftpPullError(
            f"SFTP Host Key not set: ParkOps does not connect to {config.where} without knowing the key "
            "the server must show (paste the line ssh-keyscan -t ed25519 prints, after checking its "
            "fingerprint with the server's administrator)"
        )
    if not config.username or not (config.password or config.private_key):
        raise SftpPullError("SFTP Username and an SFTP Password or SFTP Private Key are needed to log in")
    result = PullResult()
    client = _PinnedClient()
    try:
        # A loop of its own in a thread of its own: the caller's thread may already run one (a
        # task started from async code, Playwright's sync API in tests), where asyncio.run fails.
        work = asyncio.wait_for(
            _pull(config, drop, pause, min_age, now, sleep, result, client), PULL_TIMEOUT_SECONDS
        )
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sftp-pull") as pool:
            pool.submit(asyncio.run, work).result()
    except asyncssh.HostKeyNotVerifiable:
        shown = f" ({ssh_keys.describe(client.refused_key)})" if client.refused_key else ""
        message = (
            f"the SFTP server {config.where} showed a host key{shown} that is not the pinned SFTP Host Key "
            f"({ssh_keys.describe(ssh_keys.host_key(config.host_key))}): refused to connect. If the "
            "server's key really changed, confirm the new one with its administrator and paste it."
        )
    except asyncssh.KeyExchangeFailed as exc:
        message = (
            f"the SFTP server {config.where} has no host key algorithm in common with ParkOps "
            f"({ssh_keys.describe(ssh_keys.host_key(config.host_key))}): refused to connect ({exc.reason})"
        )
    except asyncssh.PermissionDenied:
        message = (
            f"the SFTP server {config.where} refused the login of {config.username!r}: check SFTP Username "
            "and the SFTP Password or SFTP Private Key"
        )
    except asyncssh.SFTPError as exc:
        message = f"SFTP error on {config.where} in folder {config.folder or '.'!r}: {exc.reason}"
    except asyncssh.Error as exc:
        message = f"the SFTP connection to {config.where} failed: {exc.reason}"
    except ValueError as exc:  # a stored key that no longer reads (both are checked when saved)
        message = f"the SFTP settings cannot be used: {exc}"
    except TimeoutError:
        message = f"the SFTP server {config.where} did not answer in time"
    except OSError as exc:
        if exc.filename:  # the drop folder, not the network
            message = f"could not write {exc.filename} for the Import Drop Folder: {exc.strerror or exc}"
        else:
            message = f"could not connect to the SFTP server {config.where}: {exc.strerror or exc}"
    else:
        return result
    raise SftpPullError(message, result) from None
