"""
CG on the 2-D Poisson equation, side by side with SciPy
=======================================================

``itersolve.linear_solve`` with :class:`~itersolve.linear.CG` and
``scipy.sparse.linalg.cg`` solve the same 5-point Poisson system to the same
relative residual. The true residual ``||b - A x|| / ||b||`` of every SciPy iterate
is computed in a callback; itersolve records its residual in the trace. The two
curves lie on top of each other: the same recurrence, the same iteration count.
"""

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse.linalg as spla

from itersolve.linear import CG, linear_solve
from itersolve.problems import poisson

A = poisson(48, dim=2)
b = np.random.default_rng(0).standard_normal(A.shape[0])
norm_b = np.linalg.norm(b)

sol = linear_solve(A, b, CG(rtol=1e-8), record=True)

scipy_residuals = [1.0]


def record(xk):
    scipy_residuals.append(np.linalg.norm(b - A @ xk) / norm_b)


spla.cg(A, b, rtol=1e-8, callback=record)

fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(
    np.r_[0, sol.trace["step"]],
    np.r_[1.0, sol.trace["relative_residual"]],
    label=f"itersolve CG ({sol.num_steps} steps)",
)
ax.semilogy(
    scipy_residuals,
    "--",
    label=f"scipy.sparse.linalg.cg ({len(scipy_residuals) - 1} steps)",
)
ax.set_xlabel("iteration")
ax.set_ylabel("||b - Ax|| / ||b||")
ax.set_title("2-D Poisson, 48 x 48 grid")
ax.legend()
fig.tight_layout()
plt.show()
