"""Images built locally with no registry, and mounts that lend a container this host's
Python: the reference server (or any project code) runs in a container without a pull.

`ensure_host_image` imports an empty tarball as an image (what ``docker import`` does);
`host_python_mounts` bind-mounts, read-only, what the interpreter, the current venv and
the project's source need. Together with ``network_mode="host"`` the container runs
``sys.executable -m ...`` exactly as this process would.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["HOST_IMAGE", "ensure_host_image", "host_python_mounts"]

#: The empty image the host's Python is mounted into.
HOST_IMAGE = "ws-resilience-host:latest"
# System directories a dynamically linked interpreter needs (libc, certificates, ...).
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/etc")


def _empty_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


def ensure_host_image(client: Any, name: str = HOST_IMAGE) -> str:
    """The id of image ``name``, importing it from an empty tarball when missing.

    No registry is contacted: the image has no files at all, everything the container
    runs comes from `host_python_mounts`.
    """
    import docker.errors

    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        pass
    repository, _, tag = (
        name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    )
    client.api.import_image_from_data(_empty_tarball(), repository=repository, tag=tag)
    return str(client.images.get(name).id)


def _covered(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def host_python_mounts() -> dict[str, str]:
    """Host path -> the same path in the container, for read-only bind mounts.

    The system directories, the base Python (``sys.base_prefix``), the current venv
    (``sys.prefix``), the directory holding this package (an editable install points
    there) and every ``sys.path`` directory not already under one of those.
    """
    candidates = [d for d in _SYSTEM_DIRS if os.path.exists(d)]
    candidates += [
        os.path.realpath(sys.base_prefix),
        os.path.realpath(sys.prefix),
        os.path.dirname(os.path.realpath(sys.executable)),
        str(Path(__file__).resolve().parents[2]),
    ]
    candidates += [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)]
    chosen: list[str] = []
    for path in candidates:
        if not _covered(path, chosen):
            # A new root may cover ones chosen earlier (e.g. a prefix over its bin dir).
            chosen = [c for c in chosen if not _covered(c, [path])] + [path]
    return {path: path for path in chosen}
