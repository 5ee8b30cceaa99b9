"""Multi-block bilevel test problems with closed-form oracles.

* :func:`quadratic_bilevel`: quadratic lower and upper levels; ``y_i*(x)``,
  the hyperobjective, its gradient and its minimiser in closed form.
* :func:`hyperparameter_learning`: per-sample training weights ``sigma(p_j)``
  (the upper variable ``x = p``) shared by ``m`` l2-regularised logistic
  regressions, block ``i`` with its own l2 weight ``lambda_i``; the upper level
  is the blocks' mean validation loss (BSVRB's hyperparameter-optimisation
  task with l2 weights in place of temperatures, on scikit-learn's bundled
  breast_cancer or digits).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from itersolve.bilevel._problem import (
    MultiBlockBilevelProblem,
    check_positive_int,
    curvature_bounds,
)
from itersolve.problems.optimization import breast_cancer_data, digits_data


def _full(samples: Tensor | None, count: int, n: int, device: torch.device) -> Tensor:
    if samples is not None:
        return samples
    return torch.arange(n, device=device).expand(count, n)


class QuadraticBilevel(MultiBlockBilevelProblem):
    """Quadratic multi-block bilevel problem (see :func:`quadratic_bilevel`).

    Per lower sample ``j`` of block ``i``::

        g_ij(x, y) = (a_ij^T y)^2 / 2 + mu |y|^2 / 2 - y^T (B_i x + c_i)
        f_i(x, y)  = |y - t_i|^2 / 2 + rho |x|^2 / 2

    so ``y_i*(x) = A_i^-1 (B_i x + c_i)`` with ``A_i = mean_j a_ij a_ij^T + mu I``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=20, seed=1)
    >>> x = p.solution()
    >>> bool(p.hypergradient(x).norm() < 1e-10)
    True
    """

    def __init__(
        self,
        a: Tensor,
        B: Tensor,
        c: Tensor,
        t: Tensor,
        *,
        mu: float,
        rho: float,
    ) -> None:
        super().__init__()
        self.a, self.B, self.c, self.t = a, B, c, t
        self.m, self.n_lower, self.dim_y = a.shape
        self.dim_x = B.shape[2]
        self.n_upper = 1
        self.dtype = a.dtype
        self.mu_value, self.rho = float(mu), float(rho)
        peak = float((a**2).sum(-1).amax(-1).max())
        self.mu, self.L = curvature_bounds(mu, mu + peak, self.m, a.dtype)
        eye = torch.eye(self.dim_y, dtype=a.dtype)
        self.A = torch.einsum("mnd,mne->mde", a, a) / self.n_lower + mu * eye

    def _a(self, blocks: Tensor, samples: Tensor | None) -> Tensor:
        s = _full(samples, len(blocks), self.n_lower, blocks.device)
        return self.a[blocks[:, None], s]

    def lower_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        a = self._a(blocks, samples)
        quad = 0.5 * (torch.einsum("ibd,id->ib", a, y) ** 2).mean(1)
        lin = (y * self._shift(blocks, x)).sum(1)
        return quad + 0.5 * self.mu_value * (y**2).sum(1) - lin

    def _shift(self, blocks: Tensor, x: Tensor) -> Tensor:
        return torch.einsum("ide,e->id", self.B[blocks], x) + self.c[blocks]

    def upper_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        return 0.5 * ((y - self.t[blocks]) ** 2).sum(1) + 0.5 * self.rho * (x @ x)

    def lower_grad(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("lower_grads", blocks)
        return self.lower_hvp(blocks, x, y, y, samples, count=False) - self._shift(
            blocks, x
        )

    def lower_hvp(
        self,
        blocks: Tensor,
        x: Tensor,
        y: Tensor,
        v: Tensor,
        samples: Tensor | None,
        *,
        count: bool = True,
    ) -> Tensor:
        if count:
            self._count("hvps", blocks)
        a = self._a(blocks, samples)
        av = torch.einsum("ibd,id->ib", a, v)
        return torch.einsum("ib,ibd->id", av, a) / a.shape[1] + self.mu_value * v

    def lower_hessian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("hessians", blocks)
        a = self._a(blocks, samples)
        eye = torch.eye(self.dim_y, dtype=y.dtype, device=y.device)
        return torch.einsum("ibd,ibe->ide", a, a) / a.shape[1] + self.mu_value * eye

    def lower_cross(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("cross_products", blocks)
        return -torch.einsum("ide,id->ie", self.B[blocks], v)

    def lower_cross_jacobian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("cross_products", blocks)
        return -self.B[blocks].transpose(1, 2)

    def upper_grads(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        self._count("upper_grads", blocks)
        gx = (self.rho * x).expand(len(blocks), -1).clone()
        return gx, y - self.t[blocks]

    # -- closed forms -------------------------------------------------------

    def lower_solution(self, x: Tensor) -> Tensor:
        """``y_i*(x)`` for every block, shape ``(m, dim_y)``."""
        rhs = torch.einsum("mde,e->md", self.B, x) + self.c
        return torch.linalg.solve(self.A, rhs.unsqueeze(-1)).squeeze(-1)

    def _maps(self) -> tuple[Tensor, Tensor]:
        M = torch.linalg.solve(self.A, self.B)  # dy*/dx per block
        r = torch.linalg.solve(self.A, self.c.unsqueeze(-1)).squeeze(-1) - self.t
        return M, r

    def hyperobjective(self, x: Tensor) -> float:
        """``F(x) = (1/m) sum_i f_i(x, y_i*(x))``."""
        y = self.lower_solution(x)
        return float(0.5 * ((y - self.t) ** 2).sum(1).mean() + 0.5 * self.rho * (x @ x))

    def hypergradient(self, x: Tensor) -> Tensor:
        """``grad F(x) = mean_i M_i^T (M_i x + r_i) + rho x``, ``M_i = A_i^-1 B_i``."""
        M, r = self._maps()
        residual = torch.einsum("mde,e->md", M, x) + r
        return torch.einsum("mde,md->e", M, residual) / self.m + self.rho * x

    def solution(self) -> Tensor:
        """The minimiser ``x*`` of ``F``."""
        M, r = self._maps()
        eye = torch.eye(self.dim_x, dtype=self.dtype)
        lhs = torch.einsum("mde,mdf->ef", M, M) / self.m + self.rho * eye
        rhs = -torch.einsum("mde,md->e", M, r) / self.m
        return torch.linalg.solve(lhs, rhs)


def quadratic_bilevel(
    m: int = 8,
    dim_x: int = 5,
    dim_y: int = 10,
    n: int = 64,
    *,
    mu: float = 1.0,
    rho: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> QuadraticBilevel:
    """A random quadratic multi-block bilevel problem with closed-form answers.

    ``a_ij ~ N(0, I / dim_y)``, ``B_i ~ N(0, 1 / dim_x)``, ``c_i, t_i ~ N(0, I)``;
    deterministic in ``seed`` (a CPU generator, whatever ``dtype``).

    Examples
    --------
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=2, dim_x=3, dim_y=4, n=8)
    >>> tuple(p.lower_solution(p.solution()).shape)
    (2, 4)
    """
    for name, value in (("m", m), ("dim_x", dim_x), ("dim_y", dim_y), ("n", n)):
        check_positive_int(value, name)
    if not mu > 0:
        raise ValueError(f"mu must be > 0 (strong convexity), got {mu!r}")
    if not rho >= 0:
        raise ValueError(f"rho must be >= 0, got {rho!r}")
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int, scale: float = 1.0) -> Tensor:
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(
            dtype
        )

    return QuadraticBilevel(
        normal(m, n, dim_y, scale=1 / math.sqrt(dim_y)),
        normal(m, dim_y, dim_x, scale=1 / math.sqrt(dim_x)),
        normal(m, dim_y),
        normal(m, dim_y),
        mu=mu,
        rho=rho,
    )


class HyperparameterLearning(MultiBlockBilevelProblem):
    """Per-sample weights shared by ``m`` l2-regularised logistic regressions.

    ``x = p`` (one entry per training sample), ``y_i = w_i`` (a linear model
    with bias); for training samples ``j`` (labels ``+-1``)::

        g_i(p, w) = mean_j sigma(p_j) log(1 + exp(-y_j w^T x_j)) + lambda_i |w|^2 / 2
        f_i(w)    = mean_{j in validation} log(1 + exp(-y_j w^T x_j))

    Features are scaled so ``|x_j| <= 1``, hence
    ``lambda_i I <= grad^2_ww g_i <= (lambda_i + 1/4) I`` on every minibatch.
    See :func:`hyperparameter_learning`.

    Examples
    --------
    >>> from itersolve.problems import hyperparameter_learning
    >>> p = hyperparameter_learning(m=4, seed=0)
    >>> p.dim_x == p.n_lower, p.dim_y
    (True, 31)
    """

    def __init__(
        self,
        train: tuple[Tensor, Tensor],
        validation: tuple[Tensor, Tensor],
        test: tuple[Tensor, Tensor],
        lambdas: Tensor,
    ) -> None:
        super().__init__()
        self.X, self.labels = train
        self.X_val, self.labels_val = validation
        self.X_test, self.labels_test = test
        self.lambdas = lambdas
        self.m = int(lambdas.numel())
        self.n_lower, self.dim_y = self.X.shape
        self.n_upper = int(self.X_val.shape[0])
        self.dim_x = self.n_lower
        self.dtype = self.X.dtype
        peak = float((self.X**2).sum(1).max())
        self.mu, self.L = curvature_bounds(
            lambdas, lambdas + 0.25 * peak, self.m, self.dtype
        )

    def _lower_batch(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        s = _full(samples, len(blocks), self.n_lower, y.device)
        if samples is None:  # views, no gathered copies of the full set
            count = len(blocks)
            Xs = self.X.expand(count, -1, -1)
            ls, p = self.labels.expand(count, -1), x.expand(count, -1)
        else:
            Xs, ls, p = self.X[s], self.labels[s], x[s]
        margin = ls * torch.einsum("ibd,id->ib", Xs, y)
        return s, Xs, ls, margin, p

    def lower_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        _, _, _, margin, p = self._lower_batch(blocks, x, y, samples)
        data = (torch.sigmoid(p) * torch.nn.functional.softplus(-margin)).mean(1)
        return data + 0.5 * self.lambdas[blocks] * (y**2).sum(1)

    def upper_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        return _mean_loss(self.X_val, self.labels_val, y, samples)

    def test_loss(self, y: Tensor) -> float:
        """Mean test logistic loss of the block models ``y`` (shape ``(m, d)``)."""
        return float(_mean_loss(self.X_test, self.labels_test, y, None).mean())

    def lower_grad(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("lower_grads", blocks)
        _, Xs, ls, margin, p = self._lower_batch(blocks, x, y, samples)
        coef = -torch.sigmoid(p) * torch.sigmoid(-margin) * ls / Xs.shape[1]
        return torch.einsum("ib,ibd->id", coef, Xs) + self.lambdas[blocks, None] * y

    def _curvature(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        _, Xs, _, margin, p = self._lower_batch(blocks, x, y, samples)
        weight = torch.sigmoid(p) * torch.sigmoid(margin) * torch.sigmoid(-margin)
        return weight / Xs.shape[1], Xs

    def lower_hessian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("hessians", blocks)
        weight, Xs = self._curvature(blocks, x, y, samples)
        eye = torch.eye(self.dim_y, dtype=y.dtype, device=y.device)
        H = torch.einsum("ib,ibd,ibe->ide", weight, Xs, Xs)
        return H + self.lambdas[blocks, None, None] * eye

    def lower_hvp(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("hvps", blocks)
        weight, Xs = self._curvature(blocks, x, y, samples)
        coef = weight * torch.einsum("ibd,id->ib", Xs, v)
        return torch.einsum("ib,ibd->id", coef, Xs) + self.lambdas[blocks, None] * v

    def _cross_rows(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-sample coefficients of ``d/dp_j grad_w g``: ``s`` and ``c X_s``."""
        s, Xs, ls, margin, p = self._lower_batch(blocks, x, y, samples)
        sig = torch.sigmoid(p)
        coef = -sig * (1 - sig) * torch.sigmoid(-margin) * ls / Xs.shape[1]
        return s, coef, Xs

    def lower_cross(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("cross_products", blocks)
        s, coef, Xs = self._cross_rows(blocks, x, y, samples)
        values = coef * torch.einsum("ibd,id->ib", Xs, v)
        out = torch.zeros(len(blocks), self.dim_x, dtype=y.dtype, device=y.device)
        return out.scatter_add_(1, s, values)

    def lower_cross_jacobian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("cross_products", blocks)
        s, coef, Xs = self._cross_rows(blocks, x, y, samples)
        out = torch.zeros(
            len(blocks), self.dim_x, self.dim_y, dtype=y.dtype, device=y.device
        )
        index = s.unsqueeze(-1).expand(-1, -1, self.dim_y)
        return out.scatter_add_(1, index, coef.unsqueeze(-1) * Xs)

    def upper_grads(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        self._count("upper_grads", blocks)
        if samples is None:
            ls = self.labels_val
            coef = -torch.sigmoid(-ls * (y @ self.X_val.T)) * ls / self.n_upper
            gy = coef @ self.X_val
        else:
            Xs, ls = self.X_val[samples], self.labels_val[samples]
            margin = ls * torch.einsum("ibd,id->ib", Xs, y)
            coef = -torch.sigmoid(-margin) * ls / Xs.shape[1]
            gy = torch.einsum("ib,ibd->id", coef, Xs)
        return torch.zeros(len(blocks), self.dim_x, dtype=y.dtype), gy


def _mean_loss(X: Tensor, labels: Tensor, y: Tensor, samples: Tensor | None) -> Tensor:
    if samples is None:
        margin = labels * (y @ X.T)
    else:
        margin = labels[samples] * torch.einsum("ibd,id->ib", X[samples], y)
    return torch.nn.functional.softplus(-margin).mean(1)


def hyperparameter_learning(
    dataset: str = "breast_cancer",
    m: int = 20,
    *,
    lambdas: tuple[float, float] = (1e-3, 1e-2),
    label_noise: float = 0.2,
    split: tuple[float, float] = (0.5, 0.25),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> HyperparameterLearning:
    """Multi-block hyperparameter learning on a scikit-learn bundled dataset.

    ``dataset`` ``"breast_cancer"`` (569 x 30, malignant vs benign) or
    ``"digits"`` (1797 x 64, digit >= 5 vs < 5). Features are standardized,
    divided by the largest row norm and joined by a bias column, all over
    ``sqrt(2)`` (so ``|x_j| <= 1``); a seeded split gives train / validation /
    test fractions ``split[0]``, ``split[1]`` and the rest. ``label_noise``
    flips that fraction of the *training* labels, which the learned sample
    weights can discount. Block ``i`` has l2 weight ``lambda_i``, log-spaced in
    ``lambdas`` over the ``m`` blocks.

    Examples
    --------
    >>> from itersolve.problems import hyperparameter_learning
    >>> p = hyperparameter_learning("digits", m=3)
    >>> p.m, p.dim_y, p.n_lower
    (3, 65, 898)
    """
    if dataset == "breast_cancer":
        X, y = breast_cancer_data(dtype=torch.float64)
        labels = 2.0 * y - 1.0
    elif dataset == "digits":
        X, y = digits_data(dtype=torch.float64)
        labels = torch.where(y >= 5, 1.0, -1.0).to(torch.float64)
    else:
        raise ValueError(
            f"dataset must be 'breast_cancer' or 'digits', got {dataset!r}"
        )
    check_positive_int(m, "m")
    lo, hi = lambdas
    if not 0 < lo <= hi < math.inf:
        raise ValueError(f"lambdas must satisfy 0 < low <= high, got {lambdas!r}")
    if not 0 <= label_noise < 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5), got {label_noise!r}")
    train_frac, val_frac = split
    if not (0 < train_frac and 0 < val_frac and train_frac + val_frac < 1):
        raise ValueError(f"split must hold two positive fractions < 1, got {split!r}")
    gen = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    X = X / torch.linalg.vector_norm(X, dim=1).square().mean().sqrt()
    X = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], dim=1) / math.sqrt(2.0)
    order = torch.randperm(n, generator=gen)
    n_tr, n_val = int(train_frac * n), int(val_frac * n)
    tr, val, te = order[:n_tr], order[n_tr : n_tr + n_val], order[n_tr + n_val :]
    train_labels = labels[tr].clone()
    flips = torch.randperm(n_tr, generator=gen)[: int(label_noise * n_tr)]
    train_labels[flips] = -train_labels[flips]
    grid = torch.logspace(math.log10(lo), math.log10(hi), m, dtype=torch.float64)
    return HyperparameterLearning(
        (X[tr].to(dtype), train_labels.to(dtype)),
        (X[val].to(dtype), labels[val].to(dtype)),
        (X[te].to(dtype), labels[te].to(dtype)),
        grid.to(dtype),
    )
