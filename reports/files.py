"""Writing the outputs: checked before any work, written all together, with ordinary permissions.

`verify` promises that nothing is written when it exits 2.  So every output
location is checked before proving starts (`unwritable`), every file is
rendered in memory, and `write_all` first writes each file under a temporary
name beside its target and only then renames them all into place.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def unwritable(directory: Path) -> str | None:
    """Why files cannot be written in `directory` (created when missing), or None.

    Probes with a real temporary file: permission bits do not tell (root passes
    every os.access check, yet cannot write in /sys or on a read-only mount).
    """
    directory = Path(directory).absolute()
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"cannot write in {existing} ({e.strerror})"
    return None


def _stage(path: Path, data: bytes) -> Path:
    """`data` under a fresh temporary name beside `path`.  Created with mode 0666 so that the
    umask decides the permissions, as for any file a program writes (mkstemp would force 0600)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_all(files: dict[Path, bytes | str]) -> None:
    """Write every file or, if one cannot be written, none (readers never see half a file)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            staged.append((_stage(path, data.encode() if isinstance(data, str) else data), path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
