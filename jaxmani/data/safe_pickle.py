"""Reads the baseline's metadata pickles without ever running code from them.

A pickle can name any importable callable (a "global") and call it while loading, so an ordinary
`pickle.load` of a downloaded file can run arbitrary code. The baseline's metadata files are plain
containers: lists of str keys, lists of int class ids, lists of lists of int word ids and int<->str
dicts. Pickled with protocol 0, 2 or 4 (from Python 2 or 3) such containers reference no global at
all, so the unpickler here admits none. The one opt-in exception is `allow_numpy`, for class-id
files written from Python 2 as numpy int arrays (the reason the baseline reads them with latin1):
it admits only the constructors of numpy arrays, dtypes and scalars, which build plain numbers.
"""

import os
import pickle

_NUMPY_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle references a global that the restricted unpickler does not admit."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` admits only the given (module, name) pairs."""

    def __init__(self, file, *, path: str, encoding: str, allowed: frozenset[tuple[str, str]]):
        super().__init__(file, encoding=encoding)
        self._path = path
        self._allowed = allowed

    def find_class(self, module: str, name: str):
        """Resolves an admitted global; refuses every other one without importing it."""
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._path}: refusing to load, the pickle references the global {module}.{name}; "
            "a data file must contain only lists, dicts, str and int"
        )


def load_pickle(
    path: str | os.PathLike, encoding: str = "ASCII", *, allow_numpy: bool = False
) -> object:
    """Loads a data pickle with a restricted unpickler that never runs code.

    Args:
      path: the pickle file.
      encoding: how Python 2 byte strings are decoded (the baseline reads class ids with "latin1").
      allow_numpy: also admit numpy numeric arrays and scalars (Python 2 class-id files).

    Returns:
      The loaded object.

    Raises:
      UnsafePickleError: the pickle references a global that is not admitted.
      pickle.UnpicklingError: the file is truncated, corrupt or not decodable with `encoding`.
    """
    path = os.fspath(path)
    allowed = _NUMPY_GLOBALS if allow_numpy else frozenset()
    with open(path, "rb") as file:
        unpickler = _RestrictedUnpickler(file, path=path, encoding=encoding, allowed=allowed)
        try:
            return unpickler.load()
        except UnsafePickleError:
            raise
        except Exception as error:
            raise pickle.UnpicklingError(f"{path}: cannot read the pickle ({error})") from error
