"""A sync state kept in a file: local, or any URL ``ObjectStoragePath`` writes (``s3://…``).

The storage the hook hands the sync engine (``loads/sync/state.py`` reads and writes the format).
A local file is written to a temporary name and renamed, so a reader never sees half a file; an
object store's upload replaces the object whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from airflow_provider_wolkvox.sources import open_text


class StateFile:
    """The sync state at ``path``.

    :param path: a local path or an ``ObjectStoragePath`` URL.
    """

    def __init__(self, path: str) -> None:
        self.name = path

    def exists(self) -> bool:
        if "://" not in self.name:
            return os.path.exists(self.name)
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        return bool(ObjectStoragePath(self.name).exists())

    def lines(self) -> Iterator[str]:
        with open_text(self.name) as handle:
            yield from handle

    def write(self, lines: Iterable[str]) -> None:
        target = self.name if "://" in self.name else f"{self.name}.tmp"
        with open_text(target, "w") as handle:
            handle.writelines(lines)
        if target != self.name:
            os.replace(target, self.name)
