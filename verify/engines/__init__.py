"""Embedding many files, on this machine or on a Ray cluster, with the results in the files' order.

An engine turns a :class:`~verify.engines.files.FileList` into chunks of ``(path, Embedding |
VerifyError)`` in the list's order: :class:`~verify.engines.local.LocalEngine` in this process,
:class:`~verify.engines.ray_engine.RayEngine` on a pool of Ray actors, each with the model loaded
once. Engines only embed: deciding, logging and the lockout stay with whoever consumes the chunks
(the enrollment service), in path order, so both engines give the same decisions.
"""

from __future__ import annotations

from verify.engines.files import FileList, list_files
from verify.engines.local import LocalEngine

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "FileList", "LocalEngine", "list_files"]
