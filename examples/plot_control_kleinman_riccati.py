"""
Kleinman's iteration for the Riccati equation
=============================================

``itersolve.control.solve_lqr`` solves the continuous-time LQR problem by
Kleinman's policy iteration, Newton's method on the algebraic Riccati equation:
each step solves one Lyapunov equation. The error to SciPy's
``solve_continuous_are`` shrinks quadratically, as Newton's method should.
"""

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg

from itersolve.control import solve_lqr

rng = np.random.default_rng(0)
n, m = 6, 2
A = rng.standard_normal((n, n)) - 3.0 * np.eye(n)  # stable, so K0 = 0 stabilizes
B = rng.standard_normal((n, m))
Q, R = np.eye(n), np.eye(m)
P_star = scipy.linalg.solve_continuous_are(A, B, Q, R)

errors = []


def record(info):
    errors.append(np.linalg.norm(info.x.numpy() - P_star) / np.linalg.norm(P_star))


sol = solve_lqr(A, B, Q, R, callback=record)

fig, ax = plt.subplots(figsize=(6, 4))
ax.semilogy(range(1, len(errors) + 1), errors, "o-")
ax.set_xlabel("Kleinman iteration")
ax.set_ylabel("||P_k - P*|| / ||P*||")
ax.set_title(f"LQR, n = {n}, m = {m}: {sol.status.name} in {sol.num_steps} steps")
fig.tight_layout()
plt.show()
