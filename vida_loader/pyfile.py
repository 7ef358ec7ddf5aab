"""Load a user's Python file (a generator plugin, a transform) as a module, once per process.

Every failure is a ``PluginError`` whose one line names the file and, where Python says,
the line: a missing file, a syntax error, an exception while the module runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from vida_loader.errors import PluginError


def split_spec(spec: str, default: str = "") -> tuple[Path, str]:
    """``file.py`` or ``file.py:ClassName`` -> (path, class name or ``default``)."""
    path, colon, name = spec.partition(".py:")
    if colon:
        return Path(path + ".py"), name
    return Path(spec), default


def load_module(path: Path, flag: str) -> ModuleType:
    """The module of ``path``, run once per process and content (``flag``: the option
    that named it)."""
    if not path.is_file():
        raise PluginError(f"{flag} '{path}': no such Python file")
    # Named by place and content: a file edited between two runs in one process is new.
    digest = hashlib.sha1(str(path.resolve()).encode() + path.read_bytes()).hexdigest()[:12]
    module_name = f"vida_plugin_{digest}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{flag} '{path}' cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise PluginError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise PluginError(
            f"{path}:{line_in(exc, path)}: loading failed: {type(exc).__name__}: {exc}"
        ) from None
    sys.modules[module_name] = module
    return module


def line_in(exc: BaseException, path: Path) -> int | str:
    """The last line of ``path`` that ``exc``'s traceback passes through ("?" if none)."""
    tb = exc.__traceback__
    line: int | str = "?"
    target = str(path.resolve())
    while tb is not None:
        if str(Path(tb.tb_frame.f_code.co_filename).resolve()) == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
