"""Compiled greedy (Gauss–Southwell) coordinate descent for L1 least squares.

The path :class:`~itersolve.optimize.BlockCoordinateDescent` takes for
``f(w) = s/2 ||X w - y||^2 + h(w)``, ``h = lam ||w||_1`` (optionally ``w >= 0``),
with a sparse ``X``, single coordinates (``block_size=1``), a greedy rule and the
proximal-gradient update (exact coordinate minimization here). Same iteration
as the generic path, one compiled loop over many coordinate updates:

* the residual ``r = X w - y`` and the gradient ``g = s X^T r`` are maintained;
  ``g`` moves along the Gram column ``X^T X_i``, computed once per coordinate
  that ever moves (greedy rules revisit the support, so few are needed) from
  the rows of ``X`` the column touches;
* the rule's score ``|G_j| c_j`` (``G`` the proximal-gradient mapping, ``c_j = 1``
  for GS, ``1 / sqrt(L_j)`` for GSL/GSD/VB) is ``(|g_j| - lam) c_j`` on a zero
  coordinate, so the update of ``g`` and the search over the zero coordinates
  are one vectorized pass (chunk maxima, then one chunk rescanned); the few
  non-zero coordinates are scored from a support list.

Between driver steps :meth:`GreedyL1Engine.measure` reduces the maintained
state (``||w||_1``, ``sum(w)``, ``||g||_inf``, ``max |G_j|``, ``||r||^2``,
``r.y``) in one pass for the stopping rule and the finiteness certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from itersolve._core.jit import HAVE_NUMBA
from itersolve.optimize.bcd import _greedy_kernels as kernels
from itersolve.optimize.bcd._columns import CompressedMatrix, compressed_matrix
from itersolve.optimize.bcd._selection import (
    GaussSouthwellDiagonalRule,
    GaussSouthwellLipschitzRule,
    GaussSouthwellRule,
    SelectionRule,
    VariableBlockRule,
)
from itersolve.optimize.bcd._structure import LeastSquaresTerms, Terms
from itersolve.optimize.bcd._updates import GradientUpdate, UpdateRule

GRAM_LIMIT = 2**25
"""Most cached Gram entries (256 MB in float64); past it columns are recomputed."""
GRAM_COLUMNS = 1024
"""Most cached Gram columns (greedy rules keep revisiting a small support)."""


@dataclass
class Reductions:
    """What one pass over the maintained state gives the stopping rule."""

    l1: float
    x_sum: float
    g_max: float
    criterion: float
    r_norm2: float
    r_dot_y: float


class GreedyL1Engine:
    """The compiled greedy iteration on ``s/2 ||X w - y||^2 + lam ||w||_1``.

    ``w`` is updated in place (``x`` is a torch view of it). ``scaled`` selects
    the ``1 / sqrt(L_j)`` weighting (GSL, GSD, VB) instead of plain GS.
    """

    def __init__(
        self,
        X: CompressedMatrix,
        y: np.ndarray,
        w0: np.ndarray,
        *,
        scale: float,
        lam: float,
        nonneg: bool,
        scaled: bool,
    ) -> None:
        chunk = kernels.CHUNK
        self.csc, self.csr = X.csc, X.csr
        n = X.column_sq_norms.shape[0]
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.scale, self.lam, self.nonneg = float(scale), float(lam), bool(nonneg)
        self.sign = -1.0 if nonneg else 1.0
        self.w = np.array(w0, dtype=np.float64).reshape(-1)
        self.x = torch.from_numpy(self.w)
        self.L = scale * X.column_sq_norms
        self.invL = np.divide(1.0, self.L, out=np.zeros(n), where=self.L > 0)
        self.weight = np.sqrt(self.invL) if scaled else np.ones(n)
        self.zmask = (self.w == 0).astype(np.float64)
        self.zw = self.zmask * self.weight
        chunks = -(-n // chunk)
        padded = np.zeros(chunks * chunk)
        padded[:n] = self.weight
        self.wmax = padded.reshape(chunks, chunk).max(axis=1)
        self.bound = np.empty(chunks)
        self.r = np.empty(self.y.shape[0])
        self.g = np.empty(n)
        self.position = np.full(n, -1, dtype=np.int64)
        self.support = np.empty(n, dtype=np.int64)
        nonzero = np.flatnonzero(self.w)
        self.support[: nonzero.size] = nonzero
        self.position[nonzero] = np.arange(nonzero.size)
        self.slot = np.full(n, -1, dtype=np.int64)
        # Reserved, not touched: pages are committed as columns are cached.
        self.cache = np.empty((max(1, min(n, GRAM_LIMIT // n, GRAM_COLUMNS)), n))
        self.gmax = np.empty((self.cache.shape[0], chunks))
        self.scratch = np.empty(n)
        self.scratch_max = np.empty(chunks)
        # [next coordinate, support size, cached columns, updates, last change]
        self.ints = np.array([-1, nonzero.size, 0, 0, 0], dtype=np.int64)
        self.full_gradients = 0
        self.refresh()

    @property
    def updates(self) -> int:
        return int(self.ints[3])

    @property
    def last_support_change(self) -> int:
        return int(self.ints[4])

    @property
    def support_size(self) -> int:
        return int(self.ints[1])

    def refresh(self) -> None:
        """Recompute ``r`` and ``g`` from ``w`` and the next greedy choice."""
        kernels.refresh(*self.csc, self.w, self.y, self.scale, self.r, self.g)
        self.full_gradients += 1
        self.bound[:] = np.inf  # every chunk rescanned: the search alone
        self.scratch[:] = 0.0
        self.scratch_max[:] = 0.0
        self.ints[0] = kernels.select(
            self.w, self.g, self.L, self.invL, self.weight, self.zw, self.zmask,
            self.lam, self.sign, self.nonneg, self.support, self.ints[1],
            self.scratch, self.scratch_max, 0.0, self.bound, self.wmax,
        )  # fmt: skip

    def run(self, budget: int) -> None:
        """Up to ``budget`` coordinate updates (fewer at an exact optimum)."""
        kernels.updates(
            budget, *self.csc, *self.csr, self.w, self.r, self.g, self.L, self.invL,
            self.weight, self.zw, self.zmask, self.lam, self.sign, self.nonneg,
            self.scale, self.support, self.position, self.ints, self.slot,
            self.cache, self.gmax, self.scratch, self.scratch_max, self.bound,
            self.wmax,
        )  # fmt: skip

    def measure(self, criterion: bool = True) -> Reductions:
        """The reductions of the maintained state (``criterion``: also
        ``max |G_j|``, the gradient-mapping stopping rule's quantity)."""
        out = kernels.measure(
            self.w, self.r, self.g, self.y, self.L, self.invL, self.lam,
            self.nonneg, criterion,
        )  # fmt: skip
        return Reductions(*(float(v) for v in out))

    def objective(self, red: Reductions) -> float:
        return 0.5 * self.scale * red.r_norm2 + self.lam * red.l1


def greedy_engine(
    rule: SelectionRule,
    update: UpdateRule,
    terms: Terms | None,
    x0: torch.Tensor,
    *,
    single_coordinates: bool,
) -> GreedyL1Engine | None:
    """The compiled engine when this run is its case, else None.

    The case: numba installed, :class:`~._structure.L1LeastSquaresStructure`
    terms with a scipy sparse ``A``, ``x0`` float64 on CPU, single coordinates
    on the default partition (``single_coordinates``), the GS / GSL / GSD / VB /
    GS-VB rule and the proximal-gradient update.
    """
    if not HAVE_NUMBA or not single_coordinates:
        return None
    if not isinstance(terms, LeastSquaresTerms) or terms.penalty is None:
        return None
    if terms.l2 != 0 or not sp.issparse(terms.A):
        return None
    if x0.dtype != torch.float64 or x0.device.type != "cpu":
        return None
    if type(update) is not GradientUpdate:
        return None
    if isinstance(rule, VariableBlockRule):
        scaled = rule.scaling == "lipschitz"
    elif type(rule) is GaussSouthwellRule:
        scaled = False
    elif type(rule) in (GaussSouthwellLipschitzRule, GaussSouthwellDiagonalRule):
        scaled = True
    else:
        return None
    penalty = terms.penalty
    if penalty.nonnegative and bool((x0 < 0).any()):
        raise ValueError("x0 must be >= 0 for a non-negative penalty")
    y = np.asarray(terms.b, dtype=np.float64).reshape(-1)
    return GreedyL1Engine(
        compressed_matrix(terms.A), y, x0.cpu().numpy(), scale=terms.scale,
        lam=penalty.lam, nonneg=penalty.nonnegative, scaled=scaled,
    )  # fmt: skip
