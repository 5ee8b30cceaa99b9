"""Compiled kernels that load numba on their first call.

numba is an optional extra (``fast``) and costs about 0.15 s to import, plus
the loading of every cached kernel, so a kernel module must not import it: a
user who imports :mod:`itersolve.linear` and solves a dense system on the GPU
never needs it. :func:`lazy_njit` decorates a kernel as ``numba.njit`` would,
but numba is imported, and the kernel compiled (or loaded from numba's on-disk
cache with ``cache=True``), only when the kernel is first called.

Without numba the kernel runs as the plain Python function: a slow but correct
fallback. Callers that want only the compiled path test :data:`HAVE_NUMBA`
(found, not imported) before taking it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
"""Whether numba is installed (looked up without importing it)."""


class LazyKernel:
    """A Python function that becomes a numba kernel on its first call.

    On that call the compiled dispatcher (``numba.njit(**options)(py_func)``, or
    ``py_func`` itself without numba) also replaces this object under its name
    in the defining module, so later lookups through the module reach the
    dispatcher with no extra Python call; references bound elsewhere
    (``from module import kernel``) forward to it.
    """

    def __init__(self, py_func: Callable[..., Any], options: dict[str, Any]) -> None:
        self.py_func = py_func
        self.options = options
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func
        self._compiled: Callable[..., Any] | None = None

    def compiled(self) -> Callable[..., Any]:
        """The numba dispatcher (``py_func`` without numba), built once."""
        if self._compiled is None:
            self._compiled = _compile(self)
        return self._compiled

    def __call__(self, *args: Any) -> Any:
        return self.compiled()(*args)

    def __repr__(self) -> str:
        state = "compiled" if self._compiled is not None else "not yet compiled"
        return f"<lazy numba kernel {self.__module__}.{self.__qualname__} ({state})>"


def _compile(kernel: LazyKernel) -> Callable[..., Any]:
    func = kernel.py_func
    if HAVE_NUMBA:
        import numba

        compiled: Callable[..., Any] = numba.njit(**kernel.options)(func)
    else:
        compiled = func
    kernel._compiled = compiled  # before the callees: a cycle ends here
    namespace = func.__globals__
    if namespace.get(func.__name__) is kernel:
        namespace[func.__name__] = compiled
    # numba resolves the kernels this one calls from its module's globals when
    # it types the call: they must be dispatchers by then, not LazyKernels.
    for name in func.__code__.co_names:
        callee = namespace.get(name)
        if isinstance(callee, LazyKernel):
            namespace[name] = callee.compiled()
    return compiled


def compiled(kernel: F) -> F:
    """The dispatcher behind ``kernel`` (compiling it now), for call sites that
    bind a kernel once and call it in a hot loop; a non-lazy ``kernel`` (already
    compiled, or a plain function) is returned as it is."""
    if isinstance(kernel, LazyKernel):
        return cast(F, kernel.compiled())
    return kernel


def lazy_njit(**options: Any) -> Callable[[F], F]:
    """``numba.njit(**options)``, deferred to the kernel's first call.

    Parameters
    ----------
    **options
        Passed to :func:`numba.njit` (``cache``, ``nogil``, ``fastmath``, ...).

    Returns
    -------
    Callable
        A decorator that turns a function into a :class:`LazyKernel`.

    Examples
    --------
    >>> import numpy as np
    >>> @lazy_njit(cache=False)
    ... def total(x):
    ...     s = 0.0
    ...     for v in x:
    ...         s += v
    ...     return s
    >>> type(total).__name__
    'LazyKernel'
    >>> float(total(np.arange(4.0)))
    6.0
    """

    def decorate(func: F) -> F:
        return cast(F, LazyKernel(func, options))

    return decorate
