"""Clone / split / prune / opacity reset with docs/method.md, "Training recipe"'s numbers, and the Adam-state surgery."""

import math

import pytest
import torch

from segmentdreamer.config import DensifyConfig
from segmentdreamer.scene import densify
from segmentdreamer.scene.gaussians import from_points


def setup(count=6):
    params = from_points(0.1 * torch.rand(count, 3, generator=torch.Generator().manual_seed(0)))
    optimizers = {name: torch.optim.Adam([p], lr=1e-3) for name, p in params.items()}
    for p in params.values():
        p.grad = torch.ones_like(p)
    for opt in optimizers.values():
        opt.step()
    return params, optimizers


def test_accumulate_uses_ndc_units_and_only_visible_gaussians():
    state = densify.initial_state(3)
    grad = torch.tensor([[1e-3, 0.0], [0.0, 2e-3], [5.0, 5.0]])
    densify.accumulate(state, grad, torch.tensor([2.0, 3.0, 0.0]), width=64, height=32)
    torch.testing.assert_close(state["grad2d"], torch.tensor([1e-3 * 32, 2e-3 * 16, 0.0]))
    torch.testing.assert_close(state["count"], torch.tensor([1.0, 1.0, 0.0]))


def test_clone_split_prune_counts_and_geometry():
    params, optimizers = setup()
    scales = torch.tensor([0.005, 0.005, 0.05, 0.05, 0.005, 0.005])
    params["scales"].data[:] = scales.log()[:, None]
    opacity = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5, 0.001])
    params["opacities"].data[:] = torch.logit(opacity)
    means_before = params["means"].detach().clone()
    state = densify.initial_state(6)
    state["grad2d"][:] = torch.tensor([1e-3, 1e-4, 1e-3, 1e-4, 1e-4, 1e-4])
    state["count"][:] = 1.0
    report = densify.densify_step(DensifyConfig(), params, optimizers, state, step=200)
    # Gaussian 0 is small and hot: cloned; 2 is large and hot: split into 2 (original removed); 5 is transparent: pruned
    assert report == {"cloned": 1, "split": 1, "pruned": 1, "before": 6, "after": 6 - 1 + 1 + 2 - 1}
    assert params["means"].shape[0] == 7
    torch.testing.assert_close(params["means"][4].detach(), means_before[0])  # the clone sits on its parent
    children = params["scales"][-2:].detach().exp()
    torch.testing.assert_close(children, torch.full((2, 3), 0.05 / 1.6))
    assert state["grad2d"].shape == (7,) and state["grad2d"].abs().sum() == 0
    for name, p in params.items():  # moments: survivors keep theirs, new rows start at zero; no grad -> no step
        moments = optimizers[name].state[p]["exp_avg"]
        assert moments.shape == p.shape and p.grad is None
        assert torch.count_nonzero(moments[:4]) == moments[:4].numel() and torch.count_nonzero(moments[4:]) == 0


def test_large_gaussians_are_pruned_only_after_iteration_300():
    for step, expected in ((300, 6), (400, 5)):
        params, optimizers = setup()
        params["scales"].data[0] = math.log(0.5)
        state = densify.initial_state(6)
        state["count"][:] = 1.0
        densify.densify_step(DensifyConfig(), params, optimizers, state, step=step)
        assert params["means"].shape[0] == expected


def test_opacity_reset_every_300_below_3000():
    config = DensifyConfig()
    params, optimizers = setup()
    params["opacities"].data[:] = torch.logit(torch.tensor([0.5, 0.006, 0.2, 0.9, 0.01, 0.02]))
    state = densify.initial_state(6)
    assert densify.densify_step(config, params, optimizers, state, step=3000) == {}
    report = densify.densify_step(config, params, optimizers, state, step=2700)
    assert report["opacity_reset"] == 1
    torch.testing.assert_close(torch.sigmoid(params["opacities"].detach()), torch.tensor([0.01, 0.006, 0.01, 0.01, 0.01, 0.01]))
    assert torch.count_nonzero(optimizers["opacities"].state[params["opacities"]]["exp_avg"]) == 0


@pytest.mark.parametrize("step", [199, 250, 2901, 3000])
def test_no_densification_outside_the_schedule(step):
    params, optimizers = setup()
    state = densify.initial_state(6)
    state["grad2d"][:] = 1.0
    state["count"][:] = 1.0
    assert "cloned" not in densify.densify_step(DensifyConfig(), params, optimizers, state, step=step)
