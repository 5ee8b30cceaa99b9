"""M-FAC optimizer: SGD preconditioned by a sliding-window inverse empirical Fisher."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from itersolve.optim._inverse_fisher import check_damping, full_precision_matmul

_KEY = "mfac"
WEIGHT_DECAY_MODES = ("coupled", "decoupled")


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
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))
        self.damping = check_damping(damping)
        self.ngrads = ngrads
        self.momentum = momentum
        self.weight_decay_mode = weight_decay_mode
        self._flat: torch.Tensor | None = None

    def _pairs(self) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        return [(p, g) for g in self.param_groups for p in g["params"]]

    def _window(self, params: list[torch.Tensor]) -> dict[str, Any]:
        window = self.state.get(_KEY)  # type: ignore[call-overload]
        if window is not None:
            return window
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
        window = {
            "grad_buffer": torch.zeros(
                self.ngrads, d, dtype=like.dtype, device=like.device
            ),
            "gram": torch.zeros(
                self.ngrads, self.ngrads, dtype=torch.float64, device=like.device
            ),
            "position": 0,
            "step": 0,
        }
        if self.momentum > 0:
            window["momentum_buffer"] = torch.zeros(
                d, dtype=like.dtype, device=like.device
            )
        self.state[_KEY] = window  # type: ignore[index]
        return window

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
        self.state[_KEY] = {  # type: ignore[index]
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
        }

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
        G: torch.Tensor = window["grad_buffer"]
        gram: torch.Tensor = window["gram"]
        m, lam = self.ngrads, self.damping
        if self._flat is None or self._flat.shape[0] != G.shape[1]:
            self._flat = torch.empty(G.shape[1], dtype=G.dtype, device=G.device)
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
            G[pos].copy_(flat)
            row = (G @ flat).to(torch.float64)
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
            update = torch.addmv(
                flat, G.t(), coef.to(G.dtype), beta=1.0 / lam, alpha=-1.0 / lam**2
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
