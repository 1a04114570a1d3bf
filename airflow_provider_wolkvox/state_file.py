"""A sync state kept in a file: local, or any URL ``ObjectStoragePath`` writes (``s3://…``).

The storage the hook hands the sync engine (``loads/sync/state.py`` reads, merges and writes the
format). One owner: a local state is held by one sync at a time through an exclusive ``flock`` on
``<path>.lock``, which names its holder (host, pid, since when) and is removed when released;
another sync waits for it up to :data:`STATE_LOCK_WAIT` seconds, then fails with
:class:`~airflow_provider_wolkvox.exceptions.WolkvoxStateLockedError`. The operating system
releases a dead holder's ``flock``: a lock file left behind by one is taken over, with a warning.
An object store offers no lock: there the state is not held, and only the merge of
``write_state`` keeps another run's entries (one sync at a time per state is the user's to keep).

A local file is written to a temporary file of a unique name in its folder, synced to disk, and put
in place by a rename, so a reader never sees half a file and two writers never share a file; an
object store's upload replaces the object whole, from a local temporary copy written first.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator

from airflow_provider_wolkvox.exceptions import WolkvoxConfigError, WolkvoxStateLockedError
from airflow_provider_wolkvox.sources import open_text

log = logging.getLogger(__name__)

#: Seconds a sync waits for another sync of the same local state to release it.
STATE_LOCK_WAIT = 60.0
#: Seconds between two tries to take a held lock.
LOCK_POLL = 0.1
#: The lock file's suffix, after the state's path.
LOCK_SUFFIX = ".lock"
# The most of a lock file read to name its holder.
_HOLDER_BYTES = 4096


class StateFile:
    """The sync state at ``path``.

    :param path: a local path or an ``ObjectStoragePath`` URL.
    :param lock_wait: seconds :meth:`owned` waits for another sync holding a local state;
        :data:`STATE_LOCK_WAIT` unless told.
    """

    def __init__(self, path: str, *, lock_wait: float | None = None) -> None:
        self.name = path
        self.lock_wait = STATE_LOCK_WAIT if lock_wait is None else lock_wait
        self._local = "://" not in path
        self._guard = threading.Lock()
        self._depth = 0
        self._lock_fd: int | None = None

    def exists(self) -> bool:
        if self._local:
            return os.path.exists(self.name)
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        return bool(ObjectStoragePath(self.name).exists())

    def lines(self) -> Iterator[str]:
        with open_text(self.name) as handle:
            yield from handle

    def write(self, lines: Iterable[str]) -> None:
        """Replace the state whole: ``lines`` go to a temporary file of a unique name, synced to disk,
        then renamed over the state (local), or uploaded in one piece (object store)."""
        folder = os.path.dirname(os.path.abspath(self.name)) if self._local else None
        handle, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(self.name)}.", suffix=".tmp", dir=folder
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.writelines(lines)
                out.flush()
                os.fsync(out.fileno())
            if self._local:
                os.chmod(temporary, _mode_of(self.name))  # as the state's, not the temporary file's 0600
                os.replace(temporary, self.name)
                _sync_folder(folder)
            else:
                from airflow.providers.common.compat.sdk import ObjectStoragePath

                with open(temporary, "rb") as source, ObjectStoragePath(self.name).open("wb") as target:
                    shutil.copyfileobj(source, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    @contextlib.contextmanager
    def owned(self) -> Iterator[None]:
        """Hold the state for one sync (see the module's docstring); reentrant on this object.

        :raises WolkvoxStateLockedError: another sync held it for all of :attr:`lock_wait`.
        :raises WolkvoxConfigError: the lock file cannot be made (no such folder, no permission).
        """
        self.hold()
        try:
            yield
        finally:
            self.release()

    def hold(self) -> None:
        """Take the hold :meth:`owned` takes, until :meth:`release`."""
        with self._guard:
            if self._depth == 0 and self._local:
                self._lock_fd = _lock(self.name, self.lock_wait)
            self._depth += 1

    def release(self) -> None:
        with self._guard:
            if self._depth == 0:
                return
            self._depth -= 1
            if self._depth == 0 and self._lock_fd is not None:
                fd, self._lock_fd = self._lock_fd, None
                _unlock(self.name, fd)


def holder_text(holder: dict[str, object] | None) -> str:
    """The holder of a lock as messages name it."""
    if not holder:
        return "a sync that has not named itself yet"
    return f"host {holder.get('host')!r}, pid {holder.get('pid')}, since {holder.get('since')}"


def _lock(path: str, wait: float) -> int:
    """Take the lock of the state at ``path``: the lock file's descriptor, locked and naming us."""
    lock_path = path + LOCK_SUFFIX
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            raise WolkvoxConfigError(
                f"cannot lock the sync state {path!r} with {lock_path!r}: {error}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                raise WolkvoxStateLockedError(
                    f"the sync state {path!r} is held by another sync ({holder_text(holder)}), still after "
                    f"waiting {wait:g} s: one sync at a time per state, as two at once would both create the "
                    "keys new to the state. Let that sync finish (WolkvoxUpsertOperator with a state_path "
                    "runs one task instance at a time unless max_active_tis_per_dag says otherwise), or give "
                    "each sync a state_path of its own",
                    state=path,
                    holder=holder_text(holder),
                ) from None
            if not announced:
                log.info(
                    "the sync state %r is held by another sync (%s): waiting up to %g s for it",
                    path,
                    holder_text(holder),
                    wait,
                )
                announced = True
            time.sleep(max(min(LOCK_POLL, deadline - time.monotonic()), 0))
            continue
        if _is_current(lock_path, fd):
            break
        # Released and removed by its holder between our open and our lock: lock the new file.
        os.close(fd)
    earlier = _holder(fd)
    me = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if earlier is not None and (earlier.get("host"), earlier.get("pid")) != (me["host"], me["pid"]):
        log.warning(
            "the sync state %r: lock taken over from %s, which ended without releasing it",
            path,
            holder_text(earlier),
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    return fd


def _unlock(path: str, fd: int) -> None:
    """Remove the lock file, then release it: a sync waiting on the removed file tries again."""
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path + LOCK_SUFFIX)
    finally:
        os.close(fd)  # releases the flock


def _is_current(lock_path: str, fd: int) -> bool:
    """True when ``fd`` is still the file at ``lock_path`` (not removed by a releasing holder)."""
    try:
        named = os.stat(lock_path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(fd: int) -> dict[str, object] | None:
    """What the lock file at ``fd`` says of its holder, if it says anything readable."""
    try:
        text = os.pread(fd, _HOLDER_BYTES, 0)
        holder = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _mode_of(path: str) -> int:
    """The permissions of the file at ``path``, or those a new file gets (0666 less the umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        pass
    try:  # Linux shows the umask without changing it (os.umask can only set it)
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = 0o022
    return 0o666 & ~umask


def _sync_folder(folder: str | None) -> None:
    """Make the rename durable: sync the folder's entry (where the platform allows it)."""
    if folder is None:
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
