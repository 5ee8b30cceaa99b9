"""AdaHessian: Adam with the Hutchinson Hessian diagonal in the denominator."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from itersolve.optim._hutchinson import (
    ABS_MODES,
    DISTRIBUTIONS,
    gradients_and_diagonal,
    spatial_average,
)

_GENERATOR_KEY = "probe_generator_state"


class Adahessian(torch.optim.Optimizer):
    """AdaHessian (Yao et al., 2021): an Adam-style step preconditioned by a
    Hutchinson estimate of the Hessian diagonal.

    Equivalent to ``torch_optimizer.Adahessian`` with ``hessian_power=0.5``
    passed explicitly (its default; the official code and this class default to
    ``k = 1``) and to ``amirgholami/adahessian``'s image-classification optimizer;
    compare with ``torch.optim.Adam`` / ``AdamW``. ``pytorch_optimizer.AdaHessian``
    is another variant: it never averages conv kernels spatially and defaults
    to ``eps = 1e-16``; on models without conv kernels and with the same ``eps``
    it takes the same steps. The paper's CIFAR script passes
    ``weight_decay = 5e-4 / lr`` here (decoupled decay, so that ``lr *
    weight_decay`` matches SGD's coupled 5e-4).

    Per step ``t`` and parameter tensor ``w`` with gradient ``g``::

        D      = spatial_average(mean_s z_s * H z_s)        (every update_each steps)
        m_t    = beta1 m_{t-1} + (1 - beta1) g
        v_t    = beta2 v_{t-1} + (1 - beta2) D * D
        denom  = (sqrt(v_t / (1 - beta2^t)))^k + eps
        w     <- w - lr * (m_t / (1 - beta1^t) / denom + weight_decay * w)

    Weight decay is decoupled (AdamW-style, scaled by ``lr``). There is no stopping
    rule: the training loop decides how many steps to take.

    ``step(closure)`` needs a closure that evaluates the model and **returns the
    loss without calling backward**: the optimizer differentiates it itself with
    ``torch.autograd.grad(..., create_graph=True)`` and a Hessian-vector product,
    then frees the graph (no ``loss.backward(create_graph=True)``, hence no
    parameter/``.grad`` reference cycle and no memory growth). After the step,
    ``p.grad`` holds the detached gradient.

    Parameters
    ----------
    params
        Parameters or parameter groups, as for any ``torch.optim`` optimizer.
    lr, betas, eps, weight_decay
        Official defaults: 0.15, (0.9, 0.999), 1e-4, 0. Keep ``eps`` near 1e-4:
        with Adam's 1e-8 the step blows up where the Hessian diagonal is ~0.
    hessian_power
        ``k`` in ``[0, 1]``; 1 is the paper/official value, 0.5 is
        ``torch_optimizer``'s default.
    n_samples
        Hutchinson probes per Hessian estimate (>= 1).
    distribution
        ``"rademacher"`` (default, lower variance) or ``"gaussian"`` probes.
    abs_mode
        ``"elementwise"``: mean of ``|z * Hz|`` over each averaging block (official
        image-classification code, default); ``"block"``: ``|mean of z * Hz|``
        (paper formula, official fairseq code). See :func:`spatial_average`.
    block_size
        Averaging block along the rows of 2-D weights (``None``: no averaging,
        ``-1``: whole row). Conv kernels are always averaged over their spatial
        dimensions.
    update_each
        Recompute the Hessian diagonal every this many steps and reuse it in
        between (the EMA still advances every step); steps without a new
        estimate cost one plain gradient.
    seed
        Seeds a private generator for the probes (``None``: torch's global RNG).
        Its state is saved in ``state_dict``, so a resumed run draws the same
        probes.
    distributed
        Data-parallel training under ``torch.distributed``: average the gradient
        and the signed Hutchinson diagonal over ``process_group`` in one
        all-reduce per step, before the absolute value and the block averaging
        (averaging after them would bias the estimate). Every rank must pass the
        same ``seed`` so that all draw the same probes; then each rank's step
        equals the single-process step on the union of the ranks' batches (for
        equal local batch sizes and a mean loss). DistributedDataParallel's own
        all-reduce fires only on ``loss.backward()``, which this optimizer never
        calls: use the bare module on every rank (parameters broadcast once at
        the start), or run the closure's forward inside ``ddp_model.no_sync()``.
    process_group
        The group to average over with ``distributed=True`` (``None``: the
        default group).

    References
    ----------
    Z. Yao, A. Gholami, S. Shen, M. Mustafa, K. Keutzer, M. W. Mahoney,
    "ADAHESSIAN: An Adaptive Second Order Optimizer for Machine Learning",
    AAAI 2021, arXiv 2006.00719.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(32, 3), torch.randn(32, 1)
    >>> opt = Adahessian(model.parameters(), lr=0.1, seed=0)
    >>> def closure():
    ...     return torch.nn.functional.mse_loss(model(x), y)
    >>> first = closure().item()
    >>> for _ in range(50):
    ...     loss = opt.step(closure)
    >>> loss.item() < first
    True
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.15,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-4,
        weight_decay: float = 0.0,
        hessian_power: float = 1.0,
        *,
        n_samples: int = 1,
        distribution: str = "rademacher",
        abs_mode: str = "elementwise",
        block_size: int | None = None,
        update_each: int = 1,
        seed: int | None = None,
        distributed: bool = False,
        process_group: Any = None,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= hessian_power <= 1.0:
            raise ValueError(f"Invalid Hessian power value: {hessian_power}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int):
            raise ValueError(f"Invalid n_samples value: {n_samples!r}")
        if n_samples < 1:
            raise ValueError(f"Invalid n_samples value: {n_samples}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(
                f"Invalid distribution: {distribution!r}; use one of {DISTRIBUTIONS}"
            )
        if abs_mode not in ABS_MODES:
            raise ValueError(f"Invalid abs_mode: {abs_mode!r}; use one of {ABS_MODES}")
        if block_size is not None and (block_size == 0 or block_size < -1):
            raise ValueError(f"Invalid block_size: {block_size}")
        if isinstance(update_each, bool) or not isinstance(update_each, int):
            raise ValueError(f"Invalid update_each value: {update_each!r}")
        if update_each < 1:
            raise ValueError(f"Invalid update_each value: {update_each}")
        if distributed and not (
            torch.distributed.is_available() and torch.distributed.is_initialized()
        ):
            raise ValueError(
                "distributed=True needs torch.distributed initialized "
                "(torch.distributed.init_process_group) before the optimizer"
            )
        if distributed and seed is None:
            raise ValueError(
                "distributed=True needs a seed: every rank must draw the same probes"
            )
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            hessian_power=hessian_power,
            abs_mode=abs_mode,
            block_size=block_size,
        )
        super().__init__(params, defaults)
        self.n_samples = n_samples
        self.distribution = distribution
        self.update_each = update_each
        self.seed = seed
        self.distributed = distributed
        self.process_group = process_group
        self._generator: torch.Generator | None = None
        self._pending_generator_state: torch.Tensor | None = None

    # -- probes ----------------------------------------------------------------

    def _probe_generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        if self._generator is None:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
            if self._pending_generator_state is not None:
                self._generator.set_state(self._pending_generator_state)
                self._pending_generator_state = None
        return self._generator

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        generator = self._generator
        if generator is None and self._pending_generator_state is not None:
            out["state"][_GENERATOR_KEY] = self._pending_generator_state.clone()
        elif generator is not None:
            out["state"][_GENERATOR_KEY] = generator.get_state()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict["state"])
        generator_state = state.pop(_GENERATOR_KEY, None)
        super().load_state_dict({**state_dict, "state": state})
        if generator_state is not None:
            if self._generator is not None:
                self._generator.set_state(generator_state)
            else:
                self._pending_generator_state = generator_state.clone()

    # -- step ------------------------------------------------------------------

    def _averaged(
        self, grads: list[torch.Tensor], diagonal: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Average gradients and diagonal over the ranks in one all-reduce."""
        pieces = [*grads, *diagonal]
        flat = torch.cat([t.reshape(-1) for t in pieces])
        torch.distributed.all_reduce(flat, group=self.process_group)
        flat /= torch.distributed.get_world_size(self.process_group)
        out = [
            chunk.view_as(t)
            for chunk, t in zip(
                flat.split([t.numel() for t in pieces]), pieces, strict=True
            )
        ]
        return out[: len(grads)], out[len(grads) :]

    def _params(self) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        return [
            (p, group)
            for group in self.param_groups
            for p in group["params"]
            if p.requires_grad
        ]

    def step(  # type: ignore[override]
        self, closure: Callable[[], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """One AdaHessian step; ``closure()`` must return the loss (no backward)."""
        if closure is None:
            raise RuntimeError(
                "Adahessian.step needs a closure that evaluates the model and "
                "returns the loss (without calling backward): the optimizer "
                "computes the gradient and a Hessian-vector product itself, "
                "e.g. opt.step(lambda: loss_fn(model(x), y))"
            )
        pairs = self._params()
        if not pairs:
            raise ValueError("Adahessian has no parameters with requires_grad=True")
        params = [p for p, _ in pairs]
        first = self.state[params[0]]
        count = int(first.get("step", 0))
        refresh = count % self.update_each == 0 or "hessian_diag" not in first
        with torch.enable_grad():
            loss = closure()
        if not isinstance(loss, torch.Tensor):
            raise TypeError(
                f"the closure must return the loss tensor, got {type(loss).__name__}"
            )
        if refresh:
            grads, diagonal = gradients_and_diagonal(
                loss,
                params,
                n_samples=self.n_samples,
                distribution=self.distribution,
                generator=self._probe_generator(params[0].device),
            )
        else:
            grads = [
                g.detach()
                for g in torch.autograd.grad(
                    loss, params, allow_unused=True, materialize_grads=True
                )
            ]
            diagonal = []
        if self.distributed:
            grads, diagonal = self._averaged(grads, diagonal)
        with torch.no_grad():
            for i, (p, group) in enumerate(pairs):
                state = self.state[p]
                if len(state) == 0 or "exp_avg" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_hessian_diag_sq"] = torch.zeros_like(p)
                if refresh:
                    state["hessian_diag"] = spatial_average(
                        diagonal[i],
                        abs_mode=group["abs_mode"],
                        block_size=group["block_size"],
                    ).contiguous()
                grad = grads[i]
                p.grad = grad
                state["step"] += 1
                step = state["step"]
                beta1, beta2 = group["betas"]
                hess = state["hessian_diag"]
                exp_avg, exp_sq = state["exp_avg"], state["exp_hessian_diag_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_sq.mul_(beta2).addcmul_(hess, hess, value=1 - beta2)
                bias1 = 1 - beta1**step
                bias2 = 1 - beta2**step
                k = group["hessian_power"]
                denom = (exp_sq / bias2).sqrt_().pow_(k).add_(group["eps"])
                update = exp_avg / bias1 / denom
                if group["weight_decay"] != 0:
                    update.add_(p, alpha=group["weight_decay"])
                p.add_(update, alpha=-group["lr"])
        return loss.detach()
