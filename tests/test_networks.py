import pytest
import torch

from aslsr.networks import Generator, PatchCritic, UNet3d, count_parameters


@pytest.mark.parametrize("shape", [(8, 8, 8), (9, 13, 6), (5, 7, 11), (16, 12, 20)])
def test_unet_keeps_any_shape(shape):
    net = UNet3d(in_channels=2, out_channels=1, channels=(4, 8, 8))
    out = net(torch.randn(2, 2, *shape))
    assert out.shape == (2, 1, *shape)


def test_untrained_generator_is_identity_on_its_image():
    torch.manual_seed(0)
    generator = Generator(channels=(4, 8, 8))
    image, t1 = torch.randn(1, 1, 9, 10, 11), torch.randn(1, 1, 9, 10, 11)
    assert torch.equal(generator(image, t1), image)
    assert torch.count_nonzero(generator(image, t1, residual=False)) == 0


def test_generator_uses_t1_channel_only_when_asked():
    with_t1, without = Generator(channels=(4, 8, 8)), Generator(channels=(4, 8, 8), use_t1=False)
    assert with_t1.unet.encoder1[0].in_channels == 2
    assert without.unet.encoder1[0].in_channels == 1
    assert count_parameters(with_t1) > count_parameters(without)


def test_critic_is_markovian_with_known_receptive_field():
    critic = PatchCritic(channels=4, layers=3)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    x = torch.zeros(1, 1, 15, 15, 15, requires_grad=True)
    score = critic(x)
    assert score.shape == (1, 1, 15, 15, 15)
    score[0, 0, 7, 7, 7].backward()
    reach = torch.nonzero(x.grad[0, 0].abs() > 0)
    assert (reach.max(0).values - reach.min(0).values).max().item() + 1 <= 2 * 3 + 1
