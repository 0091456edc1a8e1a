"""A Ctrl-C that Python swallowed, raised again at the next point of progress.

Python only prints an exception raised in a garbage-collector callback or a `__del__` and goes
on, and JAX registers a gc callback: a Ctrl-C that landed there was lost (`jaxmani prepare` went
on and exited 0). The command line installs `remember` as `sys.unraisablehook`; `check`, called
by every long loop (`progress.Progress.update`, the dataset generators per example) and once more
when a command ends, raises the remembered interrupt.
"""

import sys
import threading
from typing import Any

_swallowed = threading.Event()


def remember(unraisable: Any) -> None:
    """`sys.unraisablehook`: records a swallowed KeyboardInterrupt; anything else goes to
    Python's own hook."""
    if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
        _swallowed.set()
        return
    sys.__unraisablehook__(unraisable)


def check() -> None:
    """Raises KeyboardInterrupt if one was swallowed since the last check."""
    if _swallowed.is_set():
        _swallowed.clear()
        raise KeyboardInterrupt
