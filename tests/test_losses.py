import numpy as np
import pytest
import torch
from scipy import ndimage

from aslsr import losses


@pytest.mark.parametrize("sigma", [1.0, 2.5, 5.0])
def test_lowpass_matches_scipy_with_edge_replication(sigma):
    rng = np.random.default_rng(0)
    volume = rng.normal(size=(18, 11, 24)).astype(np.float32)
    ours = losses.GaussianLowPass(sigma)(torch.from_numpy(volume)[None, None])[0, 0].numpy()
    reference = ndimage.gaussian_filter(volume, sigma, mode="nearest", truncate=4.0)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_lowpass_does_not_darken_a_constant_image_at_its_edge():
    constant = torch.full((1, 1, 10, 10, 10), 3.0)
    torch.testing.assert_close(losses.GaussianLowPass(5.0)(constant), constant)


class _LinearCritic(torch.nn.Module):
    """D(x) = sum(w * x): its input gradient is w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return (x * self.weight).flatten(1).sum(1)


def test_gradient_penalty_against_hand_computation():
    weight = torch.full((1, 2, 2, 2), 0.5)  # ||w|| = sqrt(8 * 0.25) = sqrt(2)
    critic = _LinearCritic(weight)
    real, fake = torch.randn(3, 1, 2, 2, 2), torch.randn(3, 1, 2, 2, 2)
    penalty = losses.gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx((np.sqrt(2.0) - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_is_differentiable_in_critic_weights():
    critic = torch.nn.Conv3d(1, 1, 3, padding=1)
    penalty = losses.gradient_penalty(critic, torch.randn(2, 1, 6, 6, 6), torch.randn(2, 1, 6, 6, 6))
    penalty.backward()
    assert critic.weight.grad is not None and torch.isfinite(critic.weight.grad).all()


def test_wasserstein_terms_have_opposite_signs():
    critic = _LinearCritic(torch.ones(1, 2, 2, 2))
    real, fake = torch.ones(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2)
    assert losses.critic_wasserstein_loss(critic, real, fake).item() == pytest.approx(-8.0)
    assert losses.generator_adversarial_loss(critic, real).item() == pytest.approx(-8.0)
