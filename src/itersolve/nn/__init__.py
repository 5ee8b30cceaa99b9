"""Neural-network layers built on the solvers: deep equilibrium models.

* :class:`DEQLayer` — ``z* = cell(z*, x)`` as an :class:`torch.nn.Module`,
  solved by a method of :mod:`itersolve.fixed_point` and differentiated
  implicitly (or by the phantom gradient) through
  :func:`~itersolve.fixed_point.fixed_point_layer`.
* :class:`VariationalDropout` — dropout whose mask stays fixed across the
  solver iterations of one forward call.
"""

from itersolve.nn._deq import DEQLayer, VariationalDropout

__all__ = ["DEQLayer", "VariationalDropout"]
