"""The push-pull hole fill and the ``smooth`` network input, against hand-made cases."""
from __future__ import annotations

import pytest
import torch

from glcic_lib.models import CompletionNetwork, bilinear_deconv_init, network_input
from glcic_lib.pushpull import push_pull_fill


def _hole(n=1, h=64, w=64, box=(10, 50, 5, 60)):
    mask = torch.zeros(n, 1, h, w)
    y0, y1, x0, x1 = box
    mask[..., y0:y1, x0:x1] = 1
    return mask


def test_known_pixels_are_kept_bit_for_bit_and_the_fill_stays_in_range():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 70, 53)                 # odd sizes: the pyramid rounds up
    mask = _hole(2, 70, 53, (20, 60, 10, 40))
    out = push_pull_fill(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    assert out.min() >= image.min() and out.max() <= image.max()   # a blend of known colours


def test_a_flat_colour_is_filled_exactly():
    colour = torch.tensor([0.08, 0.39, 0.63]).view(1, 3, 1, 1)
    image = colour.expand(1, 3, 64, 64).clone()
    out = push_pull_fill(image, _hole())
    assert torch.allclose(out, image, atol=1e-6)


def test_the_fill_depends_only_on_the_known_pixels():
    torch.manual_seed(1)
    image = torch.rand(1, 3, 64, 64)
    mask = _hole()
    other = image.clone()
    other[mask.expand_as(image) > 0] = torch.rand(int(mask.sum().item()) * 3)
    assert torch.equal(push_pull_fill(image, mask), push_pull_fill(other, mask))


def test_a_hole_between_two_colours_is_filled_with_a_gradient():
    """Left half black, right half white, a hole across the middle: the fill rises from left to right."""
    image = torch.zeros(1, 3, 64, 64)
    image[..., 32:] = 1
    mask = _hole(box=(16, 48, 16, 48))
    row = push_pull_fill(image, mask)[0, 0, 32, 16:48]
    assert row[0] < 0.35 and row[-1] > 0.65
    assert torch.all(row[1:] >= row[:-1] - 1e-6)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no known pixel"):
        push_pull_fill(torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N,1,H,W\)"):
        push_pull_fill(torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ"):
        push_pull_fill(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 4))


def test_smooth_input_holds_the_fill_in_the_holes_and_the_mask_last():
    from glcic_lib.models import RESIDUAL_EPS

    torch.manual_seed(2)
    image, mask = torch.rand(1, 3, 64, 64), _hole()
    x = network_input(image, mask, torch.zeros(1, 3, 1, 1), "smooth")
    assert torch.equal(x[:, :3], push_pull_fill(image, mask))
    assert torch.equal(x[:, 3:], mask)
    net = CompletionNetwork(width=0.125, input_mode="smooth").eval()
    assert net(image, mask).shape == (1, 3, 64, 64)


def test_bilinear_deconv_init_gives_every_output_position_the_same_gain():
    """A flat input through each transposed convolution: no period-2 pattern at the start."""
    torch.manual_seed(3)
    net = CompletionNetwork(width=0.25)
    assert bilinear_deconv_init(net) == 2
    for deconv in [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose2d)]:
        flat = torch.ones(1, deconv.in_channels, 8, 8)
        out = deconv(flat)[..., 2:-2, 2:-2] - deconv.bias.view(1, -1, 1, 1)   # away from the border
        assert torch.allclose(out, out[..., :1, :1].expand_as(out), atol=1e-5)
    # the default weights do have the pattern
    torch.manual_seed(3)
    deconv = [m for m in CompletionNetwork(width=0.25).modules() if isinstance(m, torch.nn.ConvTranspose2d)][0]
    out = deconv(torch.ones(1, deconv.in_channels, 8, 8))[..., 2:-2, 2:-2]
    assert not torch.allclose(out, out[..., :1, :1].expand_as(out), atol=1e-3)


def test_residual_output_starts_as_the_filled_input_and_adds_logits():
    from glcic_lib.models import RESIDUAL_EPS, residual_output

    torch.manual_seed(4)
    image, mask = torch.rand(2, 3, 64, 64), _hole(2)
    net = CompletionNetwork(width=0.125, input_mode="smooth", output_mode="residual").eval()
    filled = push_pull_fill(image, mask).clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS)
    assert torch.allclose(net(image, mask), filled, atol=1e-6)           # zero last layer: the fill itself
    logits = torch.full((2, 3, 64, 64), 2.0)
    x = network_input(image, mask, torch.zeros(1, 3, 1, 1), "smooth")
    by_hand = 1 / (1 + (1 - filled) / filled * torch.exp(torch.tensor(-2.0)))
    assert torch.allclose(residual_output(logits, x), by_hand, atol=1e-6)
    assert net.config()["output_mode"] == "residual"


def test_residual_output_through_checkpoints_and_fast_inference(tmp_path):
    from glcic_lib.checkpoint import load_completion, save_checkpoint
    from glcic_lib.inpaint import InferenceNetwork

    torch.manual_seed(5)
    net = CompletionNetwork(width=0.125, input_mode="smooth", output_mode="residual")
    torch.nn.init.normal_(net.body[-1].conv.weight, std=0.2)
    net.eval()
    path = save_checkpoint(tmp_path / "r.pt", net)
    back = load_completion(path)
    assert back.output_mode == "residual"
    image, mask = torch.rand(1, 3, 64, 64), _hole()
    want = net(image, mask)
    assert torch.equal(back(image, mask), want)
    fast = InferenceNetwork(back, torch.device("cpu"))
    assert torch.allclose(fast(image, mask), want, atol=1e-5)


def test_residual_output_needs_an_image_input():
    with pytest.raises(ValueError, match="output_mode 'residual' .* needs input_mode 'fill', 'smooth' or 'harmonic'"):
        CompletionNetwork(width=0.125, input_mode="subtract", output_mode="residual")
    with pytest.raises(ValueError, match="output_mode must be one of"):
        CompletionNetwork(width=0.125, output_mode="skip")


def test_harmonic_fill_solves_the_laplace_equation_where_jacobi_40_has_not_converged():
    from glcic_lib.pushpull import harmonic_fill

    # a smooth colour field with a 56x64 hole; the reference is 3,000 SOR steps at full
    # resolution, the Laplace equation solved to rounding
    import torch.nn.functional as F

    from glcic_lib.pushpull import _relax_sor

    torch.manual_seed(0)
    img = F.interpolate(torch.rand(1, 3, 8, 8), size=(96, 96), mode="bicubic", align_corners=False).clamp(0, 1)
    mask = _hole(1, 96, 96, (20, 76, 16, 80))
    exact = _relax_sor(torch.where(mask > 0, torch.zeros_like(img), img), 1 - mask, img, 3000)
    assert (harmonic_fill(img, mask) - exact).abs().max() * 255 < 2          # measured 1.3 grey levels
    assert (push_pull_fill(img, mask) - exact).abs().max() * 255 > 8         # Jacobi, 40 steps: 13.4
    torch.manual_seed(1)
    image = torch.rand(2, 3, 70, 53)
    m = _hole(2, 70, 53, (20, 60, 10, 40))
    out = harmonic_fill(image, m)
    known = m.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    assert out.min() >= image.min() and out.max() <= image.max()   # the maximum principle
    with pytest.raises(ValueError, match="solver must be one of"):
        push_pull_fill(image, m, solver="multigrid")


def test_harmonic_input_mode_holds_the_harmonic_fill_and_takes_a_residual_output():
    from glcic_lib.pushpull import harmonic_fill

    from glcic_lib.models import RESIDUAL_EPS

    torch.manual_seed(2)
    image, mask = torch.rand(1, 3, 64, 64), _hole()
    x = network_input(image, mask, torch.zeros(1, 3, 1, 1), "harmonic")
    assert torch.equal(x[:, :3], harmonic_fill(image, mask)) and torch.equal(x[:, 3:], mask)
    net = CompletionNetwork(width=0.25, input_mode="harmonic", output_mode="residual").eval()
    with torch.no_grad():
        filled = harmonic_fill(image, mask).clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS)
        assert torch.allclose(net(image, mask), filled, atol=1e-6)   # starts as the fill
