"""
Newton against Nesterov on logistic regression
==============================================

L2-regularized logistic regression on scikit-learn's breast cancer data, from
``x0 = 0`` to ``||grad f|| <= 1e-8``: Newton's method converges quadratically in a
handful of steps, Nesterov's accelerated gradient method (adaptive restart,
backtracking on ``L``) needs hundreds of gradient steps.
"""

import matplotlib.pyplot as plt

from itersolve import minimize
from itersolve.optimize import Nesterov, Newton
from itersolve.problems import breast_cancer_logistic

problem = breast_cancer_logistic(l2=1e-3)

fig, ax = plt.subplots(figsize=(6, 4))
for method in (Newton(), Nesterov()):
    sol = minimize(problem, problem.x0(), method, record=True)
    ax.semilogy(
        sol.trace["step"],
        sol.trace["grad_norm"],
        label=f"{type(method).__name__}: {sol.num_steps} steps, {sol.status.name}",
    )
ax.set_xscale("log")
ax.set_xlabel("iteration")
ax.set_ylabel("||grad f(x_k)||")
ax.set_title("Logistic regression, breast cancer (569 x 30)")
ax.legend()
fig.tight_layout()
plt.show()
