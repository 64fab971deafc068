"""The built networks against the paper's Tables 1 and 2 (numbers written out here), shapes,
width multiplier, batch-norm folding and paste()."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from glcic_lib.models import (CompletionNetwork, ContextDiscriminator, GlobalDiscriminator, LocalDiscriminator,
                              count_parameters, network_input, paste)

# Table 1, by hand: (transposed?, kernel, dilation, stride, out channels).  The paper's stride 1/2
# is a transposed convolution with stride 2.
TABLE_1 = [
    (False, 5, 1, 1, 64), (False, 3, 1, 2, 128), (False, 3, 1, 1, 128), (False, 3, 1, 2, 256),
    (False, 3, 1, 1, 256), (False, 3, 1, 1, 256), (False, 3, 2, 1, 256), (False, 3, 4, 1, 256),
    (False, 3, 8, 1, 256), (False, 3, 16, 1, 256), (False, 3, 1, 1, 256), (False, 3, 1, 1, 256),
    (True, 4, 1, 2, 128), (False, 3, 1, 1, 128), (True, 4, 1, 2, 64), (False, 3, 1, 1, 32),
    (False, 3, 1, 1, 3),
]


def _convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def _layer_kinds(seq: nn.Module) -> list[list[type]]:
    """Per block: the module types in the order they run (conv, bn, activation)."""
    return [[type(m) for m in (b.conv, b.bn, b.act)] for b in seq]


def test_completion_network_is_table_1():
    model = CompletionNetwork()
    convs = _convs(model)
    got = [(isinstance(c, nn.ConvTranspose2d), c.kernel_size[0], c.dilation[0], c.stride[0], c.out_channels)
           for c in convs]
    assert got == TABLE_1
    assert all(c.kernel_size[0] == c.kernel_size[1] and c.stride[0] == c.stride[1] for c in convs)
    assert [c.in_channels for c in convs] == [4] + [t[4] for t in TABLE_1[:-1]]
    kinds = _layer_kinds(model.body)
    assert kinds[:-1] == [[type(c), nn.BatchNorm2d, nn.ReLU] for c in convs[:-1]]
    assert kinds[-1] == [nn.Conv2d, nn.Identity, nn.Sigmoid]
    # "same" padding: dilation * (k - 1) / 2 for convs, 1 for the 4x4 deconvolutions
    assert [c.padding[0] for c in convs] == [2, 1, 1, 1, 1, 1, 2, 4, 8, 16, 1, 1, 1, 1, 1, 1, 1]


@pytest.mark.parametrize("cls, size, channels", [
    (LocalDiscriminator, 128, [64, 128, 256, 512, 512]),
    (GlobalDiscriminator, 256, [64, 128, 256, 512, 512, 512]),
])
def test_discriminators_are_table_2(cls, size, channels):
    d = cls()
    convs = _convs(d)
    assert [(type(c), c.kernel_size, c.stride, c.dilation, c.padding, c.out_channels) for c in convs] == [
        (nn.Conv2d, (5, 5), (2, 2), (1, 1), (2, 2), c) for c in channels]
    assert [c.in_channels for c in convs] == [3] + channels[:-1]
    assert _layer_kinds(d.features) == [[nn.Conv2d, nn.BatchNorm2d, nn.ReLU]] * len(channels)
    side = size // 2 ** len(channels)  # 4x4 after the stride-2 convolutions
    assert (d.fc.in_features, d.fc.out_features) == (512 * side * side, 1024)
    out = d.eval()(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1024)


def test_context_discriminator_concatenates_to_one_logit():
    torch.manual_seed(0)
    d = ContextDiscriminator(width=0.125).eval()
    assert (d.fc.in_features, d.fc.out_features) == (2048, 1)
    g, l = torch.rand(3, 3, 256, 256), torch.rand(3, 3, 128, 128)
    logit = d(g, l)
    assert logit.shape == (3, 1)
    # it is exactly fc(cat(global features, local features)), no sigmoid
    want = d.fc(torch.cat([d.global_d(g), d.local_d(l)], 1))
    torch.testing.assert_close(logit, want)
    assert (logit < 0).any() or (logit > 1).any() or True  # logits are unbounded; shape is what matters


@pytest.mark.parametrize("arms, has_global, has_local", [("global", True, False), ("local", False, True)])
def test_one_arm_discriminators(arms, has_global, has_local):
    d = ContextDiscriminator(arms=arms, width=0.125).eval()
    assert (d.global_d is not None, d.local_d is not None) == (has_global, has_local)
    assert d.fc.in_features == 1024
    g = torch.rand(2, 3, 256, 256) if has_global else None
    l = torch.rand(2, 3, 128, 128) if has_local else None
    assert d(g, l).shape == (2, 1)
    missing = "global arm: pass the whole image" if has_global else "local arm: pass the local patch"
    with pytest.raises(ValueError, match=missing):
        d(None, None)


def test_discriminator_errors():
    with pytest.raises(ValueError, match=r"arms must be one of \('both', 'global', 'local'\), got 'none'"):
        ContextDiscriminator(arms="none")
    with pytest.raises(ValueError, match="LocalDiscriminator expects 128x128 inputs, got 96x128"):
        LocalDiscriminator(width=0.125)(torch.rand(1, 3, 96, 128))
    with pytest.raises(ValueError, match="GlobalDiscriminator input must have 3 channels, got 4"):
        GlobalDiscriminator(width=0.125)(torch.rand(1, 4, 256, 256))
    with pytest.raises(ValueError, match="input size must be a multiple of 64, got 100"):
        GlobalDiscriminator(input_size=100)
    # other sizes that are multiples of 2^layers work (smoke mode uses them)
    assert GlobalDiscriminator(width=0.125, input_size=64).eval()(torch.rand(1, 3, 64, 64)).shape == (1, 1024)


def test_width_multiplier_scales_every_channel_but_the_output():
    model = CompletionNetwork(width=0.25)
    assert [c.out_channels for c in _convs(model)] == [16, 32, 32, 64, 64, 64, 64, 64, 64, 64, 64, 64, 32, 32, 16, 8, 3]
    assert [c.out_channels for c in _convs(LocalDiscriminator(width=0.25))] == [16, 32, 64, 128, 128]
    full, quarter = count_parameters(CompletionNetwork()), count_parameters(model)
    assert 12 < full / quarter < 17  # ~width^2 (inner layers), a bit less (the 4-in / 3-out ends)
    assert model.config() == {"arch": "CompletionNetwork", "width": 0.25, "input_mode": "fill", "output_mode": "direct"}


@pytest.mark.parametrize("n, h, w", [(1, 64, 64), (2, 36, 52), (1, 4, 4)])
def test_completion_output_shape_and_range(small_model, n, h, w):
    out = small_model(torch.rand(n, 3, h, w), (torch.rand(n, 1, h, w) > 0.5).float())
    assert out.shape == (n, 3, h, w)
    assert ((out > 0) & (out < 1)).all()  # sigmoid


def test_completion_input_errors(small_model):
    img, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    with pytest.raises(ValueError, match="multiples of 4 .* got 30x32; glcic_lib.complete pads for you"):
        small_model(torch.rand(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match=r"image must have 3 channels, got 4"):
        small_model(torch.rand(1, 4, 32, 32), mask)
    with pytest.raises(ValueError, match=r"mask must have shape \(N, C, H, W\), got \(32, 32\)"):
        small_model(img, torch.zeros(32, 32))
    with pytest.raises(TypeError, match="image must be a floating-point tensor in \\[0, 1\\], got dtype torch.uint8"):
        small_model(img.to(torch.uint8), mask)
    with pytest.raises(ValueError, match="differ in batch or size"):
        small_model(img, torch.zeros(1, 1, 32, 28))
    with pytest.raises(ValueError, match=r"input_mode must be one of \('fill', 'subtract', 'opponent', 'smooth', 'harmonic'\), got 'zero'"):
        CompletionNetwork(input_mode="zero")


def test_network_input_fill_and_subtract():
    img = torch.full((1, 3, 4, 4), 0.8)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1, 2] = 1
    mean = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)
    x = network_input(img, mask, mean, "fill")
    assert x.shape == (1, 4, 4, 4)
    assert x[0, :3, 1, 2].tolist() == pytest.approx([0.1, 0.2, 0.3])  # hole = mean pixel
    assert x[0, :3, 0, 0].tolist() == pytest.approx([0.8] * 3)
    assert torch.equal(x[:, 3:], mask)
    y = network_input(img, mask, mean, "subtract")
    assert y[0, :3, 1, 2].tolist() == [0, 0, 0]  # hole = 0 = the mean after subtraction
    assert y[0, :3, 0, 0].tolist() == pytest.approx([0.7, 0.6, 0.5])


def test_fused_network_equals_the_original_in_eval_mode():
    torch.manual_seed(3)
    model = CompletionNetwork(width=0.125)
    with torch.no_grad():  # non-trivial batch-norm statistics and affine parameters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    model.eval()
    fused = model.fused()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    img, mask = torch.rand(2, 3, 40, 24), (torch.rand(2, 1, 40, 24) > 0.7).float()
    with torch.no_grad():
        torch.testing.assert_close(fused(img, mask), model(img, mask), atol=1e-5, rtol=1e-4)


def test_paste_selects_exactly():
    img = torch.rand(2, 3, 5, 6)
    out = torch.full_like(img, float("nan"))
    mask = torch.zeros(2, 1, 5, 6)
    mask[1, 0, 2:4, 1:3] = 1
    res = paste(out, img, mask)
    keep = (mask == 0).expand_as(img)
    assert torch.equal(res[keep], img[keep])  # bit-exact, even next to NaN outputs
    assert torch.isnan(res[~keep]).all()
    # gradients reach the network output inside the holes only
    out = torch.rand(2, 3, 5, 6, requires_grad=True)
    paste(out, img, mask.bool()).sum().backward()
    assert torch.equal(out.grad, mask.expand_as(img))


def test_opponent_input_is_a_fixed_colour_rotation_of_the_subtract_input():
    from glcic_lib.models import OPPONENT_INPUT, OPPONENT_SCALE, network_input

    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 8, 8, generator=g)
    mask = (torch.rand(2, 1, 8, 8, generator=g) > 0.7).float()
    mean = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    sub = network_input(image, mask, mean, "subtract")
    opp = network_input(image, mask, mean, "opponent")
    assert torch.equal(opp[:, 3:], mask)                                  # the mask channel is untouched
    by_hand = torch.einsum("ck,nkhw->nchw", OPPONENT_INPUT * OPPONENT_SCALE.view(3, 1), sub[:, :3])
    assert torch.allclose(opp[:, :3], by_hand, atol=1e-6)
    assert torch.all(opp[:, :3][mask.expand(-1, 3, -1, -1) > 0] == 0)      # holes carry nothing
    grey = torch.full((1, 3, 4, 4), 0.7)                                   # a grey pixel has no colour
    out = network_input(grey, torch.zeros(1, 1, 4, 4), torch.zeros(1, 3, 1, 1), "opponent")
    assert torch.allclose(out[:, 1:3], torch.zeros(1, 2, 4, 4), atol=1e-6)
    assert out[0, 0, 0, 0].item() == pytest.approx(0.7 * 3 ** 0.5, rel=1e-5)
    net = CompletionNetwork(width=0.25, input_mode="opponent")
    assert net.config()["input_mode"] == "opponent"
    with pytest.raises(ValueError, match="input_mode"):
        CompletionNetwork(width=0.25, input_mode="lab")
