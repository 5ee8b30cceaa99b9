"""M-FAC optimizer: SGD preconditioned by a sliding-window inverse empirical Fisher."""

from __future__ import annotations

import math
import os
import tempfile
import weakref
from collections.abc import Callable, Iterable
from typing import IO, Any

import torch

from itersolve.optim._inverse_fisher import check_damping, full_precision_matmul

_KEY = "mfac"
WEIGHT_DECAY_MODES = ("coupled", "decoupled")
OFFLOADS = (None, "cpu", "file")


class _Pages:
    """The ``m x d`` gradient window as pages of ``m x b`` columns.

    Kept on the parameters' device (``offload=None``), in CPU memory
    (``"cpu"``: one page at a time is copied to the device) or in an anonymous
    temporary file (``"file"``: one page at a time is read into a staging
    buffer, so memory holds ``m * b`` window entries, never ``m * d``). Page
    ``k`` covers coordinates ``bounds[k]``; in the file it is stored contiguous
    (row-major ``m x b_k``) at the element offset ``m * lo``.
    """

    def __init__(
        self,
        m: int,
        d: int,
        page_size: int,
        like: torch.Tensor,
        offload: str | None,
        directory: str | os.PathLike[str] | None,
    ) -> None:
        self.m, self.d, self.dtype = m, d, like.dtype
        self.itemsize = like.element_size()
        self.offload = offload
        self.bounds = [(lo, min(lo + page_size, d)) for lo in range(0, d, page_size)]
        width = self.bounds[0][1]
        self._store: list[torch.Tensor] = []
        self._file: IO[bytes] | None = None
        self._host: torch.Tensor | None = None
        self._staging: torch.Tensor | None = None
        if offload == "file":
            self._file = tempfile.TemporaryFile(dir=directory, buffering=0)
            # closed with the pages (an unclosed file warns when collected)
            weakref.finalize(self, self._file.close)
            # a sparse file reads as zeros: the window starts empty, as the dense one
            self._file.truncate(m * d * like.element_size())
            self._host = torch.empty(m * width, dtype=self.dtype)
        else:
            home = like.device if offload is None else torch.device("cpu")
            self._store = [
                torch.zeros(m, hi - lo, dtype=self.dtype, device=home)
                for lo, hi in self.bounds
            ]
        # pages live where the arithmetic happens: no staging copy needed
        self.direct = offload is None or (
            offload == "cpu" and like.device.type == "cpu"
        )
        if not self.direct and like.device.type != "cpu":
            self._staging = torch.empty(m * width, dtype=self.dtype, device=like.device)

    def _offset(self, k: int, row: int = 0) -> int:
        lo, hi = self.bounds[k]
        return (self.m * lo + row * (hi - lo)) * self.itemsize

    def _read(self, k: int) -> torch.Tensor:
        assert self._file is not None and self._host is not None
        lo, hi = self.bounds[k]
        host = self._host[: self.m * (hi - lo)]
        view = host.view(torch.uint8).numpy().data
        done, offset = 0, self._offset(k)
        while done < len(view):
            got = os.preadv(self._file.fileno(), [view[done:]], offset + done)
            if got <= 0:
                raise OSError("M-FAC: the gradient window file ended early")
            done += got
        return host.view(self.m, hi - lo)

    def page(self, k: int) -> torch.Tensor:
        """Page ``k`` on the device; for offloaded pages a copy in the staging
        buffer, valid until the next call."""
        if self.direct:
            return self._store[k]
        source = self._read(k) if self._file is not None else self._store[k]
        if self._staging is None:
            return source
        lo, hi = self.bounds[k]
        staged = self._staging[: self.m * (hi - lo)].view(self.m, hi - lo)
        return staged.copy_(source)

    def commit_row(self, k: int, row: int, values: torch.Tensor) -> None:
        """Write row ``row`` of page ``k`` back to where the page is kept."""
        if self.direct:
            return
        if self._file is None:
            self._store[k][row].copy_(values)
            return
        data = values.detach().to("cpu").contiguous().view(torch.uint8).numpy()
        os.pwrite(self._file.fileno(), data.data, self._offset(k, row))

    def dense(self) -> torch.Tensor:
        """The whole window as one ``m x d`` CPU tensor (costs ``m * d``)."""
        pages = [
            (self._read(k) if self._file is not None else self._store[k]).to(
                "cpu", copy=True
            )
            for k in range(len(self.bounds))
        ]
        return torch.cat(pages, dim=1)

    def load(self, window: torch.Tensor) -> None:
        """Overwrite the window with ``window`` (``m x d``)."""
        for k, (lo, hi) in enumerate(self.bounds):
            block = window[:, lo:hi]
            if self._file is None:
                self._store[k].copy_(block)
                continue
            data = block.to("cpu", self.dtype).contiguous().view(torch.uint8).numpy()
            os.pwrite(self._file.fileno(), data.data, self._offset(k))


class MFAC(torch.optim.Optimizer):
    """Dynamic M-FAC: ``w <- w - lr * F_t^{-1} g_t`` with the damped empirical
    Fisher of the last ``ngrads`` gradients.

    Compare with ``torch.optim.SGD`` / ``Adam`` and ``torch.optim.LBFGS`` (the
    closest history-based cousin); equivalent to ``IST-DASLab/M-FAC``'s
    ``optim.MFAC`` (pure PyTorch here, CPU or GPU, no CUDA build).

    Per step, with ``g`` the gradient (plus ``weight_decay * w`` when
    ``weight_decay_mode="coupled"``, the official behaviour)::

        G[t mod m] <- g                                  (ring buffer, m x d)
        F_t        = damping * I + G^T G / m             (never formed)
        u          = F_t^{-1} g
                   = g / lambda - G^T (m I + G G^T / lambda)^{-1} G g / lambda^2
        v          <- momentum * v + (1 - momentum) * u  (if momentum > 0; else v = u)
        w          <- w - lr * v   (and w <- w (1 - lr * weight_decay) if decoupled)

    The ``m x m`` Gram matrix ``G G^T`` is kept in float64 and updated one row per
    step (``O(d m)``); its Cholesky factor costs ``O(m^3)`` and the product
    ``O(d m + m^2)``. The buffer starts with zeros (as in the official code), so
    early steps use the Fisher of fewer gradients. TF32 is disabled inside
    ``step``. There is no stopping rule: the training loop decides.

    All parameters share one Fisher (one ring buffer over the concatenation of
    every parameter, saved by ``state_dict``); ``lr`` and ``weight_decay`` may
    differ per parameter group.

    Under ``DistributedDataParallel`` nothing extra is needed: ``step`` reads
    ``p.grad`` after DDP has averaged it, so every rank appends the same gradient
    and keeps the same window (tested with 2 gloo processes against the
    single-process run on the full batch).

    Parameters
    ----------
    params
        Parameters or parameter groups (all on one device, one dtype).
    lr
        Step size; small (official default 1e-3) since low-curvature directions
        are scaled by up to ``1 / damping``.
    damping
        ``lambda > 0`` (official default 1e-5).
    ngrads
        Window length ``m`` (official default 1024).
    momentum
        In ``[0, 1)``.
    weight_decay, weight_decay_mode
        L2 weight decay added to the gradient before preconditioning
        (``"coupled"``, official) or applied to the weights directly
        (``"decoupled"``, AdamW-style).
    page_size
        ``None`` (one ``m x d`` window) or ``b >= 1``: the window is kept as
        pages of ``b`` coordinates (``m x b`` each), processed one at a time in
        two passes per step (the new Gram row, then the update). The Fisher is
        still the full one, not block-diagonal: the iterates equal the
        unpaged ones up to rounding (summation order). On its own this saves
        nothing; with ``offload`` the memory for the window is one page.
    offload
        Where the pages live: ``None`` (the parameters' device), ``"cpu"``
        (CPU memory; each page is copied to the device when used, so the
        accelerator holds one page) or ``"file"`` (an anonymous temporary file
        in ``offload_dir``, read one page at a time: memory holds ``m * b``
        window entries plus ``O(d + m^2)``, never ``m * d``; each step reads the
        window twice). Needs ``page_size``.
    offload_dir
        Directory of the ``"file"`` window (default: the system's temporary
        directory).

    Notes
    -----
    ``state_dict`` stores the window as one ``m x d`` CPU tensor whatever the
    paging (this costs ``m * d`` memory while saving), so checkpoints of paged
    and unpaged optimizers load into each other.

    References
    ----------
    E. Frantar, E. Kurtic, D. Alistarh, "M-FAC: Efficient Matrix-Free
    Approximations of Second-Order Information", NeurIPS 2021, arXiv 2107.03356.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(5, 1)
    >>> x, y = torch.randn(64, 5), torch.randn(64, 1)
    >>> opt = MFAC(model.parameters(), lr=1e-2, damping=1e-3, ngrads=8)
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = torch.nn.functional.mse_loss(model(x), y)
    ...     loss.backward()
    ...     return loss
    >>> first = closure().item()
    >>> for _ in range(30):
    ...     loss = opt.step(closure)
    >>> loss.item() < first
    True
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        damping: float = 1e-5,
        ngrads: int = 1024,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        weight_decay_mode: str = "coupled",
        page_size: int | None = None,
        offload: str | None = None,
        offload_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not (isinstance(damping, (int, float)) and math.isfinite(damping)):
            raise ValueError(f"Invalid damping value: {damping}")
        if not damping > 0.0:
            raise ValueError(f"Invalid damping value: {damping}")
        if isinstance(ngrads, bool) or not isinstance(ngrads, int) or ngrads < 1:
            raise ValueError(f"Invalid ngrads value: {ngrads!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if weight_decay_mode not in WEIGHT_DECAY_MODES:
            raise ValueError(
                f"Invalid weight_decay_mode: {weight_decay_mode!r}; use one of "
                f"{WEIGHT_DECAY_MODES}"
            )
        if page_size is not None and (
            isinstance(page_size, bool) or not isinstance(page_size, int)
        ):
            raise TypeError(f"page_size must be an int or None, got {page_size!r}")
        if page_size is not None and page_size < 1:
            raise ValueError(f"Invalid page_size value: {page_size}")
        if offload not in OFFLOADS:
            raise ValueError(f"Invalid offload: {offload!r}; use one of {OFFLOADS}")
        if offload is not None and page_size is None:
            raise ValueError(
                f"offload={offload!r} needs a page_size (the window is offloaded "
                "page by page)"
            )
        if offload_dir is not None and offload != "file":
            raise ValueError(
                f"offload_dir={offload_dir!r} is only used with offload='file', got "
                f"offload={offload!r}"
            )
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))
        self.page_size = page_size
        self.offload = offload
        self.offload_dir = offload_dir
        self.damping = check_damping(damping)
        self.ngrads = ngrads
        self.momentum = momentum
        self.weight_decay_mode = weight_decay_mode
        self._flat: torch.Tensor | None = None

    def _pairs(self) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        return [(p, g) for g in self.param_groups for p in g["params"]]

    def _window(self, params: list[torch.Tensor]) -> dict[str, Any]:
        existing = self.state.get(_KEY)  # type: ignore[call-overload]
        if existing is not None:
            return existing
        dtypes = {p.dtype for p in params}
        devices = {p.device for p in params}
        if len(dtypes) != 1 or len(devices) != 1:
            raise TypeError(
                "MFAC needs all parameters on one device with one dtype, got "
                f"dtypes {sorted(map(str, dtypes))} and devices "
                f"{sorted(map(str, devices))}"
            )
        d = sum(p.numel() for p in params)
        like = params[0]
        window: dict[str, Any] = {
            "gram": torch.zeros(
                self.ngrads, self.ngrads, dtype=torch.float64, device=like.device
            ),
            "position": 0,
            "step": 0,
        }
        if self.page_size is None:
            window["grad_buffer"] = torch.zeros(
                self.ngrads, d, dtype=like.dtype, device=like.device
            )
        else:
            window["grad_pages"] = self._new_pages(d, like)
        if self.momentum > 0:
            window["momentum_buffer"] = torch.zeros(
                d, dtype=like.dtype, device=like.device
            )
        self.state[_KEY] = window  # type: ignore[index]
        return window

    def _new_pages(self, d: int, like: torch.Tensor) -> _Pages:
        assert self.page_size is not None
        return _Pages(
            self.ngrads, d, self.page_size, like, self.offload, self.offload_dir
        )

    def state_dict(self) -> dict[str, Any]:
        """As ``torch.optim.Optimizer.state_dict``; a paged window is saved as
        one ``m x d`` CPU tensor (``grad_buffer``), the unpaged format."""
        out = super().state_dict()
        window = out["state"].get(_KEY)
        if window is not None and "grad_pages" in window:
            saved = {k: v for k, v in window.items() if k != "grad_pages"}
            saved["grad_buffer"] = window["grad_pages"].dense()
            out["state"] = {**out["state"], _KEY: saved}
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        window = self.state.get(_KEY)  # type: ignore[call-overload]
        if window is None:
            return
        params = [p for p, _ in self._pairs()]
        d = sum(p.numel() for p in params)
        if tuple(window["grad_buffer"].shape) != (self.ngrads, d):
            raise ValueError(
                "the saved M-FAC window has shape "
                f"{tuple(window['grad_buffer'].shape)}, this optimizer needs "
                f"({self.ngrads}, {d}) (ngrads x number of parameters)"
            )
        like = params[0]
        restored = {
            key: (
                value.to(
                    device=like.device,
                    dtype=torch.float64 if key == "gram" else like.dtype,
                    copy=True,
                )
                if isinstance(value, torch.Tensor)
                else value
            )
            for key, value in window.items()
            if key != "grad_buffer" or self.page_size is None
        }
        if self.page_size is not None:
            pages = self._new_pages(d, like)
            pages.load(window["grad_buffer"])
            restored["grad_pages"] = pages
        self.state[_KEY] = restored  # type: ignore[index]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One M-FAC step from ``p.grad`` (``closure``, if given, is called first
        with grad enabled and should compute the loss and call ``backward``)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        pairs = self._pairs()
        params = [p for p, _ in pairs]
        if not params:
            return loss
        window = self._window(params)
        gram: torch.Tensor = window["gram"]
        m, lam = self.ngrads, self.damping
        d = sum(p.numel() for p in params)
        if self._flat is None or self._flat.shape[0] != d:
            like = params[0]
            self._flat = torch.empty(d, dtype=like.dtype, device=like.device)
        flat = self._flat
        offset = 0
        for p, group in pairs:
            view = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
            if p.grad is None:
                view.zero_()
            else:
                view.copy_(p.grad)
            if group["weight_decay"] != 0 and self.weight_decay_mode == "coupled":
                view.add_(p, alpha=group["weight_decay"])
        with full_precision_matmul():
            pos = window["position"]
            pages: _Pages | None = window.get("grad_pages")
            if pages is None:
                G: torch.Tensor = window["grad_buffer"]
                G[pos].copy_(flat)
                row = (G @ flat).to(torch.float64)
            else:
                row = torch.zeros(m, dtype=torch.float64, device=flat.device)
                for k, (lo, hi) in enumerate(pages.bounds):
                    page = pages.page(k)
                    page[pos].copy_(flat[lo:hi])
                    pages.commit_row(k, pos, page[pos])
                    row += (page @ flat[lo:hi]).to(torch.float64)
            gram[pos, :] = row
            gram[:, pos] = row
            window["position"] = (pos + 1) % m
            window["step"] += 1
            system = gram / lam
            system.diagonal().add_(m)
            chol, info = torch.linalg.cholesky_ex(system)
            if int(info) != 0:  # only reachable through overflow in G G^T
                raise RuntimeError(
                    "M-FAC: the m x m system (m I + G G^T / damping) is not "
                    "numerically positive definite; gradients are too large for "
                    f"damping={lam:g} (increase damping)"
                )
            coef = torch.cholesky_solve(row.unsqueeze(1), chol).squeeze(1)
            coef = coef.to(flat.dtype)
            if pages is None:
                update = torch.addmv(
                    flat, G.t(), coef, beta=1.0 / lam, alpha=-1.0 / lam**2
                )
            else:
                update = torch.empty_like(flat)
                for k, (lo, hi) in enumerate(pages.bounds):
                    torch.addmv(
                        flat[lo:hi],
                        pages.page(k).t(),
                        coef,
                        beta=1.0 / lam,
                        alpha=-1.0 / lam**2,
                        out=update[lo:hi],
                    )
        if self.momentum > 0:
            buffer = window["momentum_buffer"]
            buffer.mul_(self.momentum).add_(update, alpha=1 - self.momentum)
            update = buffer
        offset = 0
        for p, group in pairs:
            piece = update[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
            if group["weight_decay"] != 0 and self.weight_decay_mode == "decoupled":
                p.mul_(1 - group["lr"] * group["weight_decay"])
            p.add_(piece, alpha=-group["lr"])
        return loss
