"""glcic_lib.complete: any size, any holes, numpy and torch paths, exactness outside the holes,
precision, and the error messages for bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import make_model, random_image
from glcic_lib import complete
from glcic_lib import inpaint
from glcic_lib.bench import plain_sequential, stress_model
from glcic_lib.models import CompletionNetwork, network_input


def _box_mask(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def _reference(model, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """What complete() must return, computed the slow obvious way in float32: replicate-pad to
    a multiple of 4, run the original (unfused) network, crop, round, paste."""
    h, w = mask.shape
    img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None].float()
    ph, pw = (-h) % 4, (-w) % 4
    with torch.no_grad():
        out = model(F.pad(img, (0, pw, 0, ph), mode="replicate"), F.pad(m, (0, pw, 0, ph)))[..., :h, :w]
    u8 = (out[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return np.where(mask[..., None], u8, image)


@pytest.mark.parametrize("h, w", [(37, 53), (64, 64), (5, 3), (1, 9), (9, 1), (2, 2), (30, 31)])
def test_any_size_matches_pad_run_crop(small_model, rng, h, w):
    image = random_image(rng, h, w)
    mask = rng.random((h, w)) < 0.3
    mask[0, 0] = True
    mask.flat[-1] = False
    out = complete(small_model, image, mask, precision="float32")
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])  # known pixels: exactly the input's
    ref = _reference(small_model, image, mask)
    assert np.abs(out.astype(int) - ref).max() <= 1  # BN folding / channels-last reorder float sums


def test_many_holes_of_any_shape(small_model, rng):
    h, w = 96, 80
    image = random_image(rng, h, w)
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), bool)
    for _ in range(60):  # small boxes, single pixels, discs and a diagonal line
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = True
    mask |= (yy - 60) ** 2 + (xx - 20) ** 2 < 81
    mask |= np.abs(yy - xx) < 1
    out = complete(small_model, image, mask)
    assert np.array_equal(out[~mask], image[~mask])
    changed = np.any(out != image, axis=-1)
    assert not changed[~mask].any() and changed[mask].mean() > 0.9  # the holes are filled


def test_mask_dtypes_give_the_same_result(small_model, rng):
    image = random_image(rng, 24, 28)
    mask = _box_mask(24, 28, 4, 12, 6, 20)
    want = complete(small_model, image, mask)
    for m in (mask.astype(np.uint8) * 255, mask.astype(np.float32), mask[..., None], torch.from_numpy(mask)):
        assert np.array_equal(complete(small_model, image, m), want)


def test_empty_mask_returns_the_image_and_full_mask_is_an_error(small_model, rng):
    image = random_image(rng, 10, 12)
    out = complete(small_model, image, np.zeros((10, 12), bool))
    assert np.array_equal(out, image) and out is not image
    t = torch.rand(2, 3, 8, 8)
    same = complete(small_model, t, torch.zeros(2, 1, 8, 8))
    assert torch.equal(same, t) and same.data_ptr() != t.data_ptr()
    with pytest.raises(ValueError, match="the mask covers the whole image: there is no context"):
        complete(small_model, image, np.ones((10, 12), bool))
    full = torch.zeros(3, 1, 8, 8)
    full[1] = 1
    with pytest.raises(ValueError, match=r"the mask covers the whole image \(batch item 1\)"):
        complete(small_model, torch.rand(3, 3, 8, 8), full)


def test_torch_batch_path(small_model):
    torch.manual_seed(0)
    img = torch.rand(3, 3, 22, 26, dtype=torch.float64)
    mask = torch.zeros(3, 1, 22, 26)
    mask[0, :, 2:8, 3:9] = 1
    mask[1, :, 10:20, 0:5] = 1  # touches the border
    mask[2, :, 0, :] = 1  # a whole row
    out = complete(small_model, img, mask, precision="float32")
    assert out.shape == img.shape and out.dtype == torch.float64 and not out.requires_grad
    keep = (mask == 0).expand_as(img)
    assert torch.equal(out[keep], img[keep])
    # a batch equals its items completed one by one
    for i in range(3):
        one = complete(small_model, img[i], mask[i], precision="float32")  # (3, H, W) in, (3, H, W) out
        assert one.shape == (3, 22, 26)
        torch.testing.assert_close(one, out[i], atol=1e-5, rtol=0)
    # one (H, W) mask for the whole batch
    shared = complete(small_model, img, mask[0, 0], precision="float32")
    torch.testing.assert_close(shared[2], complete(small_model, img[2], mask[0], precision="float32"))
    # the result is a normal tensor (not an inference tensor): autograd may use it
    (out * torch.ones_like(out, requires_grad=True)).sum().backward()


def test_numpy_and_torch_paths_agree(small_model, rng):
    image = random_image(rng, 33, 41)
    mask = _box_mask(33, 41, 5, 25, 10, 30)
    a = complete(small_model, image, mask)
    t = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    b = complete(small_model, t, torch.from_numpy(mask))
    b = (b.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(a, b)


def test_postprocess_path(small_model, rng):
    image = random_image(rng, 40, 40)
    mask = _box_mask(40, 40, 0, 12, 20, 40)  # in a corner
    raw = complete(small_model, image, mask)
    post = complete(small_model, image, mask, postprocess=True)
    assert np.array_equal(post[~mask], image[~mask])
    assert not np.array_equal(post[mask], raw[mask])
    t = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    tp = complete(small_model, t, torch.from_numpy(mask)[None, None], postprocess=True)
    assert np.array_equal((tp[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), post)


def test_default_path_is_within_one_level_of_a_plain_float32_network(rng):
    """The guarantee behind the default's speed-ups (folding, channels-last, inference mode):
    the uint8 result is the plain float32 nn.Sequential Table 1's, within 2 grey levels, on a
    network whose outputs span the whole [0, 1] range."""
    model = stress_model(width=0.25, size=32)
    image = random_image(rng, 64, 48)
    mask = _box_mask(64, 48, 10, 50, 8, 40)
    out = complete(model, image, mask, device="cpu")
    plain = plain_sequential(model)
    img_t = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = plain(network_input(img_t, torch.from_numpy(mask)[None, None].float(), model.mean_pixel))
    ref = np.where(mask[..., None], (y[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), image)
    spread = ref[mask]
    assert spread.min() < 30 and spread.max() > 225  # a hard case: the full range is used
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2


def test_precisions(small_model, rng):
    assert inpaint.default_precision(torch.device("cpu")) == "float32"
    assert inpaint.hardware_precision(torch.device("cuda")) == "float16"
    assert inpaint.default_precision(torch.device("cuda")) == "float32"   # no model, no measurement
    assert inpaint.resolve_precision("auto", torch.device("cpu")) == torch.float32
    image = random_image(rng, 20, 20)
    mask = _box_mask(20, 20, 5, 15, 5, 15)
    f32 = complete(small_model, image, mask, precision="float32").astype(int)
    bf16 = complete(small_model, image, mask, precision="bfloat16").astype(int)
    assert np.array_equal(bf16[~mask], f32[~mask])
    assert np.abs(bf16 - f32).max() <= 2  # a freshly initialised network is smooth: bfloat16 is harmless here
    net = inpaint.inference_model(small_model, "cpu", torch.bfloat16)
    assert net.head[0].conv.weight.dtype == torch.bfloat16 and net.tail[-1].conv.weight.dtype == torch.float32
    assert len(net.tail) == inpaint.FLOAT32_TAIL
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'float32', 'bfloat16', 'float16'\), got 'int8'"):
        complete(small_model, image, mask, precision="int8")



def _measured(model, mean, p999, name="bfloat16"):
    """A copy of ``model`` carrying a stored measurement (as load_completion attaches it)."""
    import copy

    m = copy.deepcopy(model)
    m.reduced_precision = {name: {"mean": mean, "p999": p999, "max": int(p999) + 1, "device": "cpu"}}
    return m


def test_auto_precision_follows_the_model_s_stored_measurement_and_explicit_choices_are_kept(small_model, rng,
                                                                                              monkeypatch):
    image = random_image(rng, 24, 20)
    mask = _box_mask(24, 20, 4, 16, 4, 12)
    f32 = complete(small_model, image, mask, precision="float32")
    bf16 = complete(small_model, image, mask, precision="bfloat16")
    good, bad_mean, bad_tail = _measured(small_model, 0.3, 2.0), _measured(small_model, 1.4, 3.0), \
        _measured(small_model, 0.5, 9.0)
    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    cpu = torch.device("cpu")
    assert inpaint.hardware_precision(cpu) == "bfloat16"
    # a model never measured (a fresh network, an old checkpoint): float32 unless asked
    assert small_model.reduced_precision is None
    precision, why = inpaint.precision_choice(small_model, cpu)
    assert precision == "float32" and "no stored bfloat16 measurement" in why and "measure-precision" in why
    assert np.array_equal(complete(small_model, image, mask), f32)
    assert np.array_equal(complete(small_model, image, mask, precision="bfloat16"), bf16)   # explicit: kept
    # within 1 level on average and 4 at the 99.9th percentile: bfloat16 (+ channels-last)
    precision, why = inpaint.precision_choice(good, cpu)
    assert precision == "bfloat16" and "0.30 grey levels on average and 2.0 at the 99.9th percentile" in why
    assert inpaint.resolve_precision("auto", cpu, good) == torch.bfloat16
    assert inpaint.resolve_precision("float32", cpu, good) == torch.float32
    assert np.array_equal(complete(good, image, mask), bf16)
    assert np.array_equal(complete(good, image, mask, precision="float32"), f32)
    net = inpaint.inference_model(good, "cpu", inpaint.resolve_precision("auto", cpu, good))
    assert net.head[0].conv.weight.dtype == torch.bfloat16
    assert net.head[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    # too large on average, or in the tail: float32, and the reason says so
    for model in (bad_mean, bad_tail):
        precision, why = inpaint.precision_choice(model, cpu)
        assert precision == "float32" and "beyond the limits 1 and 4" in why, why
        assert np.array_equal(complete(model, image, mask), f32)
    overflowed = _measured(small_model, 0.1, 1.0)
    overflowed.reduced_precision["bfloat16"]["overflowed"] = True
    assert inpaint.default_precision(cpu, overflowed) == "float32"
    # the other devices: CUDA takes float16 on a float16 (or, standing in, a bfloat16) measurement; MPS float32
    assert inpaint.default_precision(torch.device("cuda"), good) == "float16"
    assert "float16 rounds 8x finer" in inpaint.precision_choice(good, torch.device("cuda"))[1]
    assert inpaint.default_precision(torch.device("cuda"), _measured(small_model, 0.1, 1.0, "float16")) == "float16"
    assert inpaint.default_precision(torch.device("cuda"), bad_tail) == "float32"
    assert inpaint.default_precision(torch.device("mps"), good) == "float32"
    # a CPU without bfloat16 hardware: float32 whatever the measurement
    monkeypatch.setenv("GLCIC_CPU_BF16", "0")
    precision, why = inpaint.precision_choice(good, cpu)
    assert precision == "float32" and "no bfloat16 hardware" in why
    assert np.array_equal(complete(good, image, mask), f32)


def test_a_checkpoint_carries_its_measurement_to_auto(small_model, tmp_path, monkeypatch):
    from glcic_lib.checkpoint import load_completion, save_checkpoint

    monkeypatch.setenv("GLCIC_CPU_BF16", "1")
    stored = {"bfloat16": {"mean": 0.2, "p999": 2.0, "max": 4, "device": "cpu"}}
    save_checkpoint(tmp_path / "measured.pt", small_model, meta={"reduced_precision": stored})
    save_checkpoint(tmp_path / "plain.pt", small_model)
    measured = load_completion(tmp_path / "measured.pt")
    assert measured.reduced_precision == stored
    assert inpaint.default_precision(torch.device("cpu"), measured) == "bfloat16"
    assert load_completion(tmp_path / "plain.pt").reduced_precision is None
    assert inpaint.default_precision(torch.device("cpu"), load_completion(tmp_path / "plain.pt")) == "float32"


def test_bf16_cpu_detection(monkeypatch, tmp_path):
    from glcic_lib import device

    monkeypatch.setenv("GLCIC_CPU_BF16", "yes")
    assert device.cpu_has_bfloat16()
    monkeypatch.setenv("GLCIC_CPU_BF16", "off")
    assert not device.cpu_has_bfloat16()
    monkeypatch.delenv("GLCIC_CPU_BF16")
    # no torch probe says yes: the answer comes from the Linux CPU flags
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert device._cpuinfo_flags(str(cpuinfo)) >= {"avx512_bf16", "avx2"}
    assert device._cpuinfo_flags(str(tmp_path / "missing")) == set()
    flags = {"amx_bf16": True, "avx512_bf16": True, "": False}
    for flag, expected in flags.items():
        monkeypatch.setattr(device, "_cpuinfo_flags", lambda flag=flag: {"fpu", "avx2", flag} - {""})
        assert device.cpu_has_bfloat16() is expected, flag
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AMX")
    assert device.cpu_has_bfloat16()


def test_bfloat16_stays_within_one_level_of_float32_on_the_bundled_model():
    """The evidence behind the bfloat16 default on CPUs: on the trained demo model (whatever
    load_pretrained() bundles), bfloat16 moves the completed pixels by less than 1 uint8 level on
    average inside the holes of every held-out image, and leaves the known pixels alone."""
    import glcic_lib
    from glcic_lib.data import load_heldout

    model = glcic_lib.load_pretrained()
    items = load_heldout()
    assert len(items) >= 8
    for item in items:
        f32 = complete(model, item.image, item.mask, precision="float32").astype(int)
        bf16 = complete(model, item.image, item.mask, precision="bfloat16").astype(int)
        assert np.array_equal(f32[~item.mask], bf16[~item.mask]), item.name
        diff = np.abs(f32 - bf16)[item.mask]
        assert diff.mean() <= 1.0, f"{item.name}: bfloat16 differs by {diff.mean():.2f} levels on average in the holes"


def test_compile_falls_back_to_the_uncompiled_network(small_model, rng, monkeypatch):
    model = make_model(0.125, seed=3)
    image = random_image(rng, 16, 16)
    mask = _box_mask(16, 16, 4, 12, 4, 12)
    eager = complete(model, image, mask)

    def broken(*args, **kwargs):
        def run(*a, **k):
            raise RuntimeError("Compiler: cc not found")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match=r"torch.compile failed \(RuntimeError: Compiler: cc not found\); "
                                            r"completing without it"):
        assert np.array_equal(complete(model, image, mask, compile=True), eager)
    fast = inpaint.inference_model(model, "cpu")
    assert inpaint.compiled_model(model, "cpu") is fast  # remembered: no second attempt, no second warning
    assert np.array_equal(complete(model, image, mask, compile=True), eager)


@pytest.mark.slow
def test_compiled_network_gives_the_same_completion(rng):
    """A real torch.compile (Inductor, frozen weights) of a tiny network: same result, cached."""
    model = make_model(0.0625, seed=4)
    image = random_image(rng, 16, 16)
    mask = _box_mask(16, 16, 4, 12, 4, 12)
    eager = complete(model, image, mask, precision="float32").astype(int)
    compiled = complete(model, image, mask, precision="float32", compile=True).astype(int)
    assert np.abs(compiled - eager).max() <= 1 and np.array_equal(compiled[~mask], eager[~mask])
    net = inpaint.compiled_model(model, "cpu", torch.float32)
    assert net is inpaint.compiled_model(model, "cpu", torch.float32)
    assert net is not inpaint.inference_model(model, "cpu", torch.float32)

def test_inference_copy_is_cached_and_follows_training():
    model = make_model(0.125, seed=5)
    flags = [p.requires_grad for p in model.parameters()]   # biases before batch norm are frozen
    a = inpaint.inference_model(model, "cpu")
    assert inpaint.inference_model(model, "cpu") is a
    assert inpaint.inference_model(model, "cpu", torch.bfloat16) is not a
    image = np.full((16, 16, 3), 128, np.uint8)
    mask = _box_mask(16, 16, 4, 12, 4, 12)
    before = complete(model, image, mask)
    with torch.no_grad():  # an optimiser step changes the weights in place
        model.body[-1].conv.bias.add_(3.0)
    after = complete(model, image, mask)
    assert (after[mask].astype(int) - before[mask]).mean() > 50  # the new weights are used
    assert model.training is False and [p.requires_grad for p in model.parameters()] == flags


def test_model_argument(small_model, tmp_path, rng):
    from glcic_lib.checkpoint import save_checkpoint

    image = random_image(rng, 12, 12)
    mask = _box_mask(12, 12, 2, 6, 2, 6)
    path = save_checkpoint(tmp_path / "m.pt", small_model)
    assert np.array_equal(complete(path, image, mask), complete(small_model, image, mask))
    assert np.array_equal(complete(str(path), image, mask), complete(small_model, image, mask))
    for m in (mask, np.zeros_like(mask)):  # checked even when there is nothing to fill
        with pytest.raises(TypeError, match="model must be a CompletionNetwork, a checkpoint path or None"):
            complete(torch.nn.Linear(2, 2), image, m)
    with pytest.raises(TypeError, match="image must be a uint8 numpy array or a float torch tensor, got list"):
        complete(small_model, image.tolist(), mask)


def test_bad_input_is_named(small_model, rng):
    image = random_image(rng, 16, 20)
    mask = np.zeros((16, 20), bool)
    mask[2:5, 2:5] = True
    cases = [
        ((image, mask[:15]), ValueError, r"mask size \(15, 20\) differs from image size \(16, 20\)"),
        ((image[..., 0], mask), ValueError, r"image must be \(H, W, 3\) RGB, got shape \(16, 20\) \(a grey image"),
        ((np.dstack([image, image[..., :1]]), mask), ValueError, r"got shape \(16, 20, 4\) \(RGBA: drop the alpha"),
        ((image.astype(np.float32) / 255, mask), TypeError, "numpy images must be uint8 RGB .* got dtype float32"),
        ((image, np.where(mask, np.nan, 0.0)), ValueError, "mask contains NaN"),
        ((image, mask.astype(np.complex64)), TypeError, "mask must be bool, integer or float"),
        ((image, mask[None]), ValueError, r"mask must be \(H, W\) with the holes marked \(True, 1 or white\), got shape \(1, 16, 20\)"),
        ((image[:0], mask[:0]), ValueError, r"image is empty: shape \(0, 20, 3\)"),
    ]
    t = torch.rand(2, 3, 16, 20)
    tm = torch.zeros(2, 1, 16, 20)
    tm[..., 3:6, 3:6] = 1
    nan = t.clone()
    nan[1, 2, 5, 5] = float("nan")
    cases += [
        ((t * 2, tm), ValueError, r"image values must lie in \[0, 1\], found \[0.\d+, [12].*\]$"),
        ((t * 255, tm), ValueError, r"found \[0.\d+, 25\d\] \(looks like 0-255: divide by 255\)"),
        ((t - 0.5, tm), ValueError, r"image values must lie in \[0, 1\], found \[-0.\d+, 0.\d+\]"),
        ((nan, tm), ValueError, "image contains NaN"),
        (((t * 255).to(torch.uint8), tm), TypeError, r"image tensor must be float in \[0, 1\], got torch.uint8"),
        ((t[:, :2], tm), ValueError, r"image tensor must be \(N, 3, H, W\) or \(3, H, W\), got \(2, 2, 16, 20\)"),
        ((t, tm[:, :, :8]), ValueError, r"mask size \(8, 20\) differs from image size \(16, 20\)"),
        ((t, torch.zeros(3, 1, 16, 20)), ValueError, "mask batch 3 does not match image batch 2"),
        ((t, tm * float("nan")), ValueError, "mask contains NaN"),
    ]
    for (img, m), exc, msg in cases:
        with pytest.raises(exc, match=msg):
            complete(small_model, img, m)
