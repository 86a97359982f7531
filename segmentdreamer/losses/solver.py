"""The first-order PF-ODE solver shared by every loss (paper Eq. 5, docs/method.md, "Notation").

``phi`` is one DDIM / DPM-Solver-1 step from timestep t to timestep u, in either direction (u < t
denoises, u > t inverts). ``consistency_fn`` is the paper's consistency function G (Eq. 5) written in
its closed form; the two are algebraically equal, which ``tests/test_solver.py`` checks. ``invert``
chains ``phi`` along a list of timesteps with the noise predicted at each start point.

All tensors are latents of shape [N, C, h, w]; timesteps are ints or LongTensors of shape [N].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from ..prior.schedule import NoiseSchedule, Timesteps


def predict_x0(x: Tensor, t: Timesteps, eps: Tensor, schedule: NoiseSchedule) -> Tensor:
    """The data prediction x0 = (x - s_t eps) / a_t of a noisy latent x at timestep t."""
    return (x - schedule.sigma(t, x) * eps) / schedule.alpha(t, x)


def phi(x: Tensor, t: Timesteps, u: Tensor | int, eps: Tensor, schedule: NoiseSchedule) -> Tensor:
    """One DDIM step Phi(x, t -> u) with noise prediction ``eps`` taken at (x, t).

    x0 = (x - s_t eps) / a_t;  returns a_u x0 + s_u eps.   Shapes: x, eps [N, C, h, w].
    """
    return schedule.alpha(u, x) * predict_x0(x, t, eps, schedule) + schedule.sigma(u, x) * eps


def consistency_fn(x: Tensor, t: Timesteps, u: Timesteps, eps: Tensor, schedule: NoiseSchedule) -> Tensor:
    """Paper Eq. 5: G(x, t, u) = (a_u / a_t) x - a_u * (integral_{lambda_t}^{lambda_u} e^{-lambda} d lambda) * eps.

    The integral is e^{-lambda_t} - e^{-lambda_u}; ``eps`` is the noise predicted at (x, t).
    """
    a_t, a_u = schedule.alpha(t, x), schedule.alpha(u, x)
    integral = (-schedule.log_snr(t, x)).exp() - (-schedule.log_snr(u, x)).exp()
    return (a_u / a_t) * x - a_u * integral * eps


NoiseAt = Callable[[Tensor, int], Tensor]
"""A noise predictor bound to a condition: (x [N, C, h, w], timestep) -> eps [N, C, h, w]."""


def invert(x: Tensor, timesteps: Sequence[int], noise_at: NoiseAt, schedule: NoiseSchedule) -> tuple[Tensor, Tensor]:
    """Deterministic multi-step sampling along ``timesteps`` (ascending: DDIM inversion).

    Steps phi(x, t_k -> t_{k+1}, noise_at(x, t_k)) for consecutive pairs; consecutive equal timesteps
    are skipped (no UNet call).

    Returns:
        (x at timesteps[-1], the noise used by the last step [N, C, h, w]).
    """
    if len(timesteps) < 2:
        raise ValueError("invert needs at least a start and an end timestep")
    last_eps = None
    for start, end in zip(timesteps[:-1], timesteps[1:]):
        if start == end:
            continue
        last_eps = noise_at(x, start)
        x = phi(x, start, end, last_eps, schedule)
    if last_eps is None:
        raise ValueError(f"invert got no distinct timesteps: {list(timesteps)}")
    return x, last_eps
