"""Losses against hand computations."""
import math

import pytest
import torch

from glcic_lib import losses


def test_masked_mse_by_hand():
    out = torch.zeros(1, 3, 2, 2)
    target = torch.zeros(1, 3, 2, 2)
    target[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0])     # a hole pixel: errors 1, 4, 9
    target[0, :, 1, 1] = 100.0                             # outside the hole: ignored
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 0, 0] = 1
    mask[0, 0, 0, 1] = 1                                   # a second hole pixel with zero error
    # (1 + 4 + 9 + 0) / (2 pixels x 3 channels)
    assert losses.masked_mse(out, target, mask).item() == pytest.approx(14 / 6)


def test_masked_mse_ignores_everything_outside_the_holes():
    torch.manual_seed(0)
    out, target = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 3:6] = 1
    base = losses.masked_mse(out, target, mask)
    out2 = out.clone()
    out2[:, :, 6:, :] = 1e3          # change only known pixels
    assert losses.masked_mse(out2, target, mask).item() == pytest.approx(base.item())
    out.requires_grad_(True)
    losses.masked_mse(out, target, mask).backward()
    assert (out.grad * (1 - mask)).abs().sum() == 0
    assert (out.grad * mask).abs().sum() > 0


def test_masked_mse_errors():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="differ in shape"):
        losses.masked_mse(x, torch.zeros(1, 3, 4, 5), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="does not fit output"):
        losses.masked_mse(x, x, torch.ones(1, 2, 4, 4))
    with pytest.raises(ValueError, match="no hole pixels"):
        losses.masked_mse(x, x, torch.zeros(1, 1, 4, 4))


def test_discriminator_loss_by_hand():
    real = torch.tensor([[2.0], [0.0]])
    fake = torch.tensor([[-1.0], [3.0]])
    sig = lambda v: 1 / (1 + math.exp(-v))
    expected_real = -(math.log(sig(2.0)) + math.log(sig(0.0))) / 2
    expected_fake = -(math.log(1 - sig(-1.0)) + math.log(1 - sig(3.0))) / 2
    got = losses.discriminator_loss(real, fake).item()
    assert got == pytest.approx(0.5 * (expected_real + expected_fake), rel=1e-6)


def test_discriminator_loss_is_stable_for_huge_logits():
    val = losses.discriminator_loss(torch.tensor([[1e4]]), torch.tensor([[-1e4]]))
    assert torch.isfinite(val) and val.item() == pytest.approx(0.0, abs=1e-6)


def test_generator_losses_by_hand():
    fake = torch.tensor([[0.5], [-2.0]])
    sig = lambda v: 1 / (1 + math.exp(-v))
    non_sat = -(math.log(sig(0.5)) + math.log(sig(-2.0))) / 2
    sat = (math.log(1 - sig(0.5)) + math.log(1 - sig(-2.0))) / 2
    assert losses.generator_loss(fake).item() == pytest.approx(non_sat, rel=1e-6)
    assert losses.generator_loss(fake, saturating=True).item() == pytest.approx(sat, rel=1e-6)


def test_joint_loss_uses_the_papers_alpha():
    assert losses.ALPHA == 0.0004
    assert losses.joint_loss(torch.tensor(1.0), torch.tensor(10.0)).item() == pytest.approx(1.004)
    assert losses.joint_loss(torch.tensor(1.0), torch.tensor(10.0), alpha=0.0).item() == 1.0


def test_masked_mse_in_half_precision_counts_large_holes_exactly():
    # mixed precision hands the loss float16 outputs; a float16 hole count overflows past 65,504
    torch.manual_seed(0)
    out, target = torch.rand(2, 3, 192, 192), torch.rand(2, 3, 192, 192)
    mask = torch.zeros(2, 1, 192, 192)
    mask[..., 8:184, 8:184] = 1                      # 2 x 3 x 176^2 = 185,856 hole values
    want = losses.masked_mse(out, target, mask)
    got = losses.masked_mse(out.half(), target.half(), mask.half())
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(want), rel=1e-3) and float(want) > 0.1


def test_opponent_mse_is_the_masked_mse_at_weight_one_and_weights_colour_differences():
    from glcic_lib.losses import OPPONENT, masked_mse, opponent_mse

    assert torch.allclose(OPPONENT @ OPPONENT.T, torch.eye(3), atol=1e-6)     # orthonormal
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    m = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    assert opponent_mse(a, b, m, 1.0).item() == pytest.approx(masked_mse(a, b, m).item(), rel=1e-6)
    grey = torch.full((1, 3, 4, 4), 0.5)
    ones = torch.ones(1, 1, 4, 4)
    brighter = grey + 0.1                                 # a pure luminance error: weight 1 whatever w
    assert opponent_mse(brighter, grey, ones, 8.0).item() == pytest.approx(0.01, rel=1e-5)
    redder = grey.clone()
    redder[:, 0] += 0.1
    redder[:, 1] -= 0.1                                   # a pure red-green error: weighted by w
    # by hand: RGB squared errors 0.01 + 0.01 + 0 over 3 values, times w = 4
    assert opponent_mse(redder, grey, ones, 4.0).item() == pytest.approx(4 * 0.02 / 3, rel=1e-5)
    with pytest.raises(ValueError, match="RGB"):
        opponent_mse(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4), ones)
    with pytest.raises(ValueError, match="chroma_weight"):
        opponent_mse(a, b, m, -1)


def _checkerboard(size=32, levels=1.0):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return ((yy + xx) % 2 * 2 - 1).float() * levels / 255


def test_grid_penalty_by_hand():
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 4:28] = 1
    flat = torch.full((1, 3, 32, 32), 0.4)
    assert losses.grid_penalty(flat, mask).item() == 0
    # +-1 grey level checkerboard: Laplacian +-8/255 at every pixel, all of it the pattern
    board = flat + _checkerboard()
    assert losses.grid_penalty(board, mask).item() == pytest.approx(64 / 255 ** 2, rel=1e-5)
    # linear and quadratic shading have a constant Laplacian: no pattern
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    shading = flat + xx / 100 + yy ** 2 / 4000
    assert losses.grid_penalty(shading, mask).item() == pytest.approx(0, abs=1e-12)
    # only the hole, eroded by 3 pixels, counts: a checkerboard outside it costs nothing
    outside = flat + _checkerboard() * (1 - mask)
    assert losses.grid_penalty(outside, mask).item() == pytest.approx(0, abs=1e-12)


def test_grid_penalty_gradient_stays_in_the_holes_and_thin_holes_score_zero():
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 8:24, 8:24] = 1
    mask[1, :, 10:14, :] = 1                     # a 4-px stroke: nothing 3 px inside it
    x = (torch.full((2, 3, 32, 32), 0.5) + _checkerboard(levels=2)).requires_grad_()
    penalty = losses.grid_penalty(x, mask)
    assert penalty.item() == pytest.approx(256 / 255 ** 2 / 2, rel=1e-5)   # image 0 only, mean over 2
    penalty.backward()
    assert x.grad[0, :, :6].abs().sum() == 0 and x.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match="grid_penalty needs"):
        losses.grid_penalty(x, mask[:, :, :16])
