import pytest
import torch

from aslsr.networks import Generator, PatchCritic, UNet3d, count_parameters


@pytest.mark.parametrize("shape", [(8, 8, 8), (9, 13, 6), (5, 7, 11), (16, 12, 20)])
def test_unet_keeps_any_shape(shape):
    net = UNet3d(in_channels=2, out_channels=1, channels=(4, 8, 8))
    out = net(torch.randn(2, 2, *shape))
    assert out.shape == (2, 1, *shape)


@pytest.mark.parametrize("init", ["pytorch", "he"])
def test_untrained_generator_is_identity_on_its_image(init):
    torch.manual_seed(0)
    generator = Generator(channels=(4, 8, 8), init=init)
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


def _bottleneck_features(init: str) -> torch.Tensor:
    torch.manual_seed(0)
    net = UNet3d(init=init)
    features = []
    net.bottleneck.register_forward_hook(lambda module, inputs, output: features.append(output))
    with torch.no_grad():
        net(torch.randn(1, 2, 32, 32, 32, generator=torch.Generator().manual_seed(1)))
    return features[0]


def test_he_init_carries_the_input_to_the_bottleneck_where_the_pytorch_default_does_not():
    """Six convolutions and two 2x average poolings deep (the poolings alone cut white noise's std 8x), the
    features' variation over space is ~0.1 with He init and ~300x less with PyTorch's default, whose
    bottleneck is nearly constant over space: set by the random biases, not by the input."""
    default, he = _bottleneck_features("pytorch"), _bottleneck_features("he")
    spatial_std = {name: f.std(dim=(2, 3, 4)).mean().item() for name, f in (("pytorch", default), ("he", he))}
    assert 0.05 < spatial_std["he"] < 1.0
    assert spatial_std["pytorch"] < spatial_std["he"] / 100
    assert all(torch.count_nonzero(m.bias) == 0 for m in UNet3d(init="he").modules() if isinstance(m, torch.nn.Conv3d))


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="unknown init"):
        UNet3d(init="xavier")


def test_every_init_the_network_knows_is_a_valid_configuration():
    from aslsr.config import preset
    from aslsr.errors import InputError
    from aslsr.networks import INITS

    assert [preset("fast", generator_init=init).generator_init for init in INITS] == list(INITS)
    with pytest.raises(InputError, match="generator_init"):
        preset("fast", generator_init="xavier")
