"""A real SFTP server for the tests: asyncssh's server on a free port of 127.0.0.1, its loop in a
daemon thread, serving a temporary folder as the account's root (chrooted, like the README's
OpenSSH set-up). One login: a password or an authorised public key."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

T = TypeVar("T")


class _Server(asyncssh.SSHServer):
    def __init__(self, owner: SftpServer) -> None:
        self.owner = owner

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.owner.connections.append(conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self.owner.username and password == self.owner.password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return (
            username == self.owner.username
            and self.owner.client_key is not None
            and (key.public_data == self.owner.client_key.public_data)
        )


USERNAME = "campus-import"
PASSWORD = "s3cret-pass"  # noqa: S105 (the test server's own login)


class _Sftp(asyncssh.SFTPServer):
    """The SFTP subsystem, able to refuse renames (a ``.bak`` the login may not write to)."""

    def __init__(self, chan: asyncssh.SSHServerChannel, owner: SftpServer) -> None:
        super().__init__(chan, chroot=str(owner.root).encode())
        self.owner = owner

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        if self.owner.refuse_moves:
            raise asyncssh.SFTPPermissionDenied("moves refused by the test server")
        super().rename(oldpath, newpath)


class SftpServer:
    def __init__(self, root: Path, username: str = USERNAME, password: str = PASSWORD) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_keys = [self.host_key]  # add others before ``start`` (a server with several types)
        self.client_key: asyncssh.SSHKey | None = None
        self.refuse_moves = False
        self.connections: list[asyncssh.SSHServerConnection] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def public_host_key(self) -> str:
        return self.host_key.export_public_key("openssh").decode("ascii").strip()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> SftpServer:
        self._thread.start()

        async def listen() -> asyncssh.SSHAcceptor:
            return await asyncssh.listen(
                "127.0.0.1",
                0,
                server_factory=lambda: _Server(self),
                server_host_keys=self.host_keys,
                sftp_factory=lambda chan: _Sftp(chan, self),
                allow_scp=False,
            )

        self._acceptor = self._run(listen())
        self.port = self._acceptor.get_port()
        return self

    def stop(self) -> None:
        """Close the live connections (``acceptor.close`` only stops listening), then the loop;
        a second call does nothing."""
        if self._loop.is_closed():
            return

        async def close() -> None:
            for conn in self.connections:
                conn.close()
                await conn.wait_closed()
            if self._acceptor is not None:
                self._acceptor.close()
                await self._acceptor.wait_closed()

        self._run(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def running(root: Path) -> Iterator[SftpServer]:
    """For a fixture: a started server, stopped afterwards."""
    server = SftpServer(root).start()
    try:
        yield server
    finally:
        server.stop()
