"""The authors' Torch7 model: reading .t7 files, mapping them to CompletionNetwork, converting.

The real ``completionnet_places2.t7`` is never downloaded or committed: every file here is
written by the test itself with :mod:`t7_writer` (a minimal Torch7 serialiser), from a narrow
(width 1/8) PyTorch ``CompletionNetwork`` with random weights and batch-norm statistics, laid
out module by module like the released model (one flat ``nn.Sequential``; rows 5-12 are
``nn.SpatialDilatedConvolution``, the two upsampling rows ``nn.SpatialFullConvolution``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import t7_writer as W  # noqa: E402

import glcic_lib  # noqa: E402
from glcic_lib import pretrained  # noqa: E402
from glcic_lib.checkpoint import CheckpointError, load_completion, read_checkpoint  # noqa: E402
from glcic_lib.cli import run  # noqa: E402
from glcic_lib.models import CompletionNetwork  # noqa: E402
from glcic_lib.tables import COMPLETION_LAYERS  # noqa: E402
from glcic_lib.torch7 import Torch7Error, load_torch7, read_t7  # noqa: E402

WIDTH = 0.125
MEAN = (0.4560, 0.4472, 0.4155)
#: Rows (1-based) that the released file stores as nn.SpatialDilatedConvolution.
DILATED_CLASS_ROWS = range(5, 13)


# ---------------------------------------------------------------------------------------------
# Building .t7 files from a PyTorch network
# ---------------------------------------------------------------------------------------------

def random_network(seed: int = 0, width: float = WIDTH) -> CompletionNetwork:
    """A narrow network with random weights and non-trivial batch-norm statistics, eval mode."""
    torch.manual_seed(seed)
    net = CompletionNetwork(width=width, mean_pixel=MEAN, input_mode="subtract")
    with torch.no_grad():
        for block in net.body:
            block.conv.bias.uniform_(-0.1, 0.1)
            if isinstance(block.bn, torch.nn.BatchNorm2d):
                block.bn.running_mean.uniform_(-0.2, 0.2)
                block.bn.running_var.uniform_(0.5, 2.0)
                block.bn.weight.uniform_(0.5, 1.5)
                block.bn.bias.uniform_(-0.1, 0.1)
    return net.eval()


def _np(t: torch.Tensor, dtype=np.float32) -> np.ndarray:
    return t.detach().numpy().astype(dtype)


def torch7_modules(net: CompletionNetwork, *, old_bn=False, mm_rows=(), dtype=np.float32, eps=1e-5) -> list:
    """The released model's flat module list for ``net``: conv, BN, ReLU, ..., conv, Sigmoid."""
    modules = []
    for row, (layer, block) in enumerate(zip(COMPLETION_LAYERS, net.body), 1):
        weight, bias = _np(block.conv.weight, dtype), _np(block.conv.bias, dtype)
        if layer.transposed:
            modules.append(W.spatial_full_convolution(weight, bias, layer.int_stride, layer.padding))
        else:
            modules.append(W.spatial_convolution(
                weight, bias, layer.int_stride, layer.padding,
                dilation=layer.dilation if row in DILATED_CLASS_ROWS else None, mm=row in mm_rows))
        if layer.activation == "bn+relu":
            bn = block.bn
            modules.append(W.spatial_batch_norm(_np(bn.running_mean, dtype), _np(bn.running_var, dtype),
                                                _np(bn.weight, dtype), _np(bn.bias, dtype), eps=eps,
                                                old_running_std=old_bn))
            modules.append(W.relu())
        else:
            modules.append(W.sigmoid())
    return modules


def write_t7(path: Path, modules: list, mean=MEAN, nested: bool = False) -> Path:
    model = W.sequential(W.sequential(*modules[:20]), *modules[20:]) if nested else W.sequential(*modules)
    obj = {"model": model} if mean is None else {"model": model, "mean": mean}
    return W.save(path, obj)


@pytest.fixture(scope="module")
def net() -> CompletionNetwork:
    return random_network()


@pytest.fixture(scope="module")
def t7_file(net, tmp_path_factory) -> Path:
    return write_t7(tmp_path_factory.mktemp("t7") / "completionnet_places2.t7", torch7_modules(net),
                    mean=np.asarray(MEAN, np.float32))


def inputs(seed: int = 1, size: int = 32):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, size, size, generator=gen)
    mask = torch.zeros(2, 1, size, size)
    mask[0, :, 4:20, 6:18] = 1
    mask[1, :, 10:30, 2:12] = 1
    return image, mask


def outputs(model, seed: int = 1) -> torch.Tensor:
    image, mask = inputs(seed)
    with torch.no_grad():
        return model(image, mask)


# ---------------------------------------------------------------------------------------------
# Loading: same network, same outputs
# ---------------------------------------------------------------------------------------------

def test_load_gives_the_source_networks_outputs(net, t7_file):
    result = load_torch7(t7_file)
    model = result.model
    assert isinstance(model, CompletionNetwork) and not model.training
    assert result.width == WIDTH and model.width == WIDTH
    assert model.input_mode == "subtract"
    assert result.mean_pixel == pytest.approx(MEAN, abs=1e-7)
    assert torch.allclose(model.mean_pixel.flatten(), torch.tensor(MEAN), atol=1e-7)
    assert result.keys == ["model", "mean"]
    assert len(result.modules) == 16 * 3 + 2 and result.modules[-1] == "nn.Sigmoid"
    assert result.modules.count("nn.SpatialDilatedConvolution") == 8
    for (name, a), b in zip(net.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.allclose(outputs(model), outputs(net), atol=1e-6, rtol=0)
    assert "width 0.125" in result.summary() and "0.4560, 0.4472, 0.4155" in result.summary()


def test_input_is_prepared_as_the_authors_do(t7_file):
    model = load_torch7(t7_file).model
    image, mask = inputs()
    x = model.prepare_input(image, mask)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    assert torch.allclose(x[:, :3], torch.where(mask.bool(), torch.zeros(()), image - mean))
    assert torch.equal(x[:, 3:], mask)
    assert float(x[0, :3, 10, 10].abs().sum()) == 0.0  # a hole pixel: zero after subtracting the mean


def test_complete_accepts_the_loaded_model(net, t7_file):
    model = load_torch7(t7_file).model
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 42, 3), dtype=np.uint8)  # not a multiple of 4: complete() pads
    mask = np.zeros((30, 42), bool)
    mask[8:20, 10:30] = True
    out = glcic_lib.complete(model, image, mask, device="cpu")
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])
    ref = glcic_lib.complete(net, image, mask, device="cpu")
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def _torch7_dilated_conv(x, weight, bias, stride, pad, dilation):
    """Torch7's SpatialDilatedConvolution, written from its definition (cross-correlation)."""
    c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((c_out, ho, wo)) + bias[:, None, None]
    for o in range(c_out):
        for y in range(ho):
            for x_ in range(wo):
                patch = xp[:, y * stride: y * stride + dilation * (k - 1) + 1: dilation,
                           x_ * stride: x_ * stride + dilation * (k - 1) + 1: dilation]
                out[o, y, x_] += (patch * weight[o]).sum()
    return out


def _torch7_full_conv(x, weight, bias, stride, pad, adj=0):
    """Torch7's SpatialFullConvolution from its definition: every input pixel scatters its
    kernel ``weight[i, o]`` (layout nInputPlane x nOutputPlane x kH x kW, no flip) into the
    output at ``(y*stride - pad + ky, x*stride - pad + kx)``."""
    c_in, h, w = x.shape
    _, c_out, k, _ = weight.shape
    ho, wo = (h - 1) * stride - 2 * pad + k + adj, (w - 1) * stride - 2 * pad + k + adj
    full = np.zeros((c_out, ho + 2 * pad + k, wo + 2 * pad + k))
    for i in range(c_in):
        for y in range(h):
            for x_ in range(w):
                full[:, y * stride: y * stride + k, x_ * stride: x_ * stride + k] += x[i, y, x_] * weight[i]
    return full[:, pad: pad + ho, pad: pad + wo] + bias[:, None, None]


@pytest.mark.parametrize("row", [2, 7, 13])
def test_layer_semantics_match_torch7_definitions(t7_file, row):
    """Independent of the writer: the layout read from the file, used by PyTorch, computes what
    Torch7's layer computes by definition (strided conv, dilated conv, full convolution)."""
    fields = read_t7(t7_file)[b"model"]["modules"][3 * (row - 1)]
    weight, bias = fields["weight"].astype(np.float64), fields["bias"].astype(np.float64)
    stride, pad = fields["dW"], fields["padW"]
    block = load_torch7(t7_file).model.body[row - 1]
    x = np.random.default_rng(row).standard_normal((weight.shape[1 if row != 13 else 0], 5, 6))
    with torch.no_grad():
        got = block.conv(torch.from_numpy(x).float()[None])[0].double().numpy()
    if row == 13:
        assert fields.torch_typename() == b"nn.SpatialFullConvolution"
        want = _torch7_full_conv(x, weight, bias, stride, pad, fields["adjW"])
        assert want.shape[1:] == (10, 12)  # doubles the size
    else:
        want = _torch7_dilated_conv(x, weight, bias, stride, pad, fields.dilationW or 1)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_batch_norm_uses_the_files_running_statistics(t7_file):
    fields = read_t7(t7_file)[b"model"]["modules"][1]
    bn = load_torch7(t7_file).model.body[0].bn
    x = np.random.default_rng(0).standard_normal((1, bn.num_features, 3, 3))
    want = ((x - fields["running_mean"][None, :, None, None])
            / np.sqrt(fields["running_var"][None, :, None, None] + fields["eps"])
            * fields["weight"][None, :, None, None] + fields["bias"][None, :, None, None])
    with torch.no_grad():
        got = bn(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_older_file_layouts_load_the_same(net, tmp_path):
    """Pre-2016 batch norm (running_std = 1/sqrt(var+eps)), SpatialConvolutionMM's 2-D weights,
    double tensors, a nested Sequential and the mean as a plain Lua table."""
    mods = torch7_modules(net, old_bn=True, mm_rows=(1, 16, 17), dtype=np.float64)
    path = write_t7(tmp_path / "old.t7", mods, mean=list(MEAN), nested=True)
    result = load_torch7(path)
    assert result.mean_pixel == pytest.approx(MEAN)
    assert "nn.SpatialConvolutionMM" in result.modules
    for a, b in zip(net.body, result.model.body):
        if isinstance(a.bn, torch.nn.BatchNorm2d):
            assert torch.allclose(a.bn.running_var, b.bn.running_var, rtol=1e-5)
    assert torch.allclose(outputs(result.model), outputs(net), atol=1e-5, rtol=0)


def test_a_different_batch_norm_eps_is_honoured(net, tmp_path):
    path = write_t7(tmp_path / "eps.t7", torch7_modules(net, eps=1e-3))
    model = load_torch7(path).model
    ref = CompletionNetwork(width=WIDTH, mean_pixel=MEAN, input_mode="subtract")
    ref.load_state_dict(net.state_dict())
    for block in ref.body:
        if isinstance(block.bn, torch.nn.BatchNorm2d):
            block.bn.eps = 1e-3
    assert all(b.bn.eps == 1e-5 for b in model.body if isinstance(b.bn, torch.nn.BatchNorm2d))
    assert torch.allclose(outputs(model), outputs(ref.eval()), atol=1e-5, rtol=0)


def test_full_width_layer_sequence_is_accepted(tmp_path):
    """The released model's own channel counts (width 1) load as width 1 (no forward: speed)."""
    net = CompletionNetwork(width=1.0, mean_pixel=MEAN, input_mode="subtract").eval()
    result = load_torch7(write_t7(tmp_path / "full.t7", torch7_modules(net)))
    assert result.width == 1.0
    assert [b.conv.out_channels for b in result.model.body] == [L.out for L in COMPLETION_LAYERS]
    assert torch.equal(result.model.body[8].conv.weight, net.body[8].conv.weight)


# ---------------------------------------------------------------------------------------------
# The mean pixel
# ---------------------------------------------------------------------------------------------

def test_mean_pixel_from_argument_and_missing(net, tmp_path):
    path = write_t7(tmp_path / "nomean.t7", torch7_modules(net), mean=None)
    with pytest.raises(Torch7Error, match=r"stores no mean pixel \(keys found: \['model'\].*pass mean_pixel"):
        load_torch7(path)
    assert load_torch7(path, mean_pixel=(0.5, 0.5, 0.5)).mean_pixel == (0.5, 0.5, 0.5)
    bare = W.save(tmp_path / "bare.t7", W.sequential(*torch7_modules(net)))
    with pytest.raises(Torch7Error, match=r"keys found: none, a bare model"):
        load_torch7(bare)
    assert load_torch7(bare, mean_pixel=MEAN).width == WIDTH


def test_mean_pixel_is_validated(net, tmp_path):
    with pytest.raises(Torch7Error, match=r"mean pixel \[116.0, 114.0, 106.0\] is not in \[0, 1\]"):
        load_torch7(write_t7(tmp_path / "m255.t7", torch7_modules(net), mean=[116.0, 114.0, 106.0]))
    with pytest.raises(Torch7Error, match=r"mean pixel must have 3 values \(R, G, B\), got 2"):
        load_torch7(write_t7(tmp_path / "m2.t7", torch7_modules(net), mean=[0.5, 0.5]))


def test_table_without_a_model(tmp_path):
    path = W.save(tmp_path / "other.t7", {"weights": np.zeros(3, np.float32), "mean": list(MEAN)})
    with pytest.raises(Torch7Error, match=r"keys \['weights', 'mean'\] but no network: expected one of \['model'"):
        load_torch7(path)


# ---------------------------------------------------------------------------------------------
# Bad files: clear errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep", [3, 10, 0.5, -1], ids=["in-first-int", "in-header", "half", "last-byte"])
def test_truncated_file(t7_file, tmp_path, keep):
    data = t7_file.read_bytes()
    n = keep if isinstance(keep, int) and keep > 0 else (len(data) - 1 if keep == -1 else int(len(data) * keep))
    path = tmp_path / "cut.t7"
    path.write_bytes(data[:n])
    with pytest.raises(Torch7Error, match=r"ends early|truncated|not a Torch7 binary file"):
        load_torch7(path)


def test_truncated_inside_a_storage_is_detected_not_read_past(t7_file, tmp_path):
    data = t7_file.read_bytes()
    path = tmp_path / "cut.t7"
    path.write_bytes(data[: len(data) - 200])
    with pytest.raises(Torch7Error, match=r"cannot read .*cut\.t7: the file ends early: \d+ more bytes expected"):
        read_t7(path)


def test_trailing_garbage(t7_file, tmp_path):
    path = tmp_path / "extra.t7"
    path.write_bytes(t7_file.read_bytes() + b"junk")
    with pytest.raises(Torch7Error, match=r"4 bytes follow the Torch7 object"):
        read_t7(path)


@pytest.mark.parametrize("content, what", [
    (b"\x89PNG\r\n\x1a\n" + bytes(40), "a PNG image"),
    (b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "an HTML/XML page"),
    (b"hello, I am a text file\n", r" \(it starts with bytes b'hello, I'\)"),
    (b"3\n1\n4\n", "ASCII format"),
])
def test_not_a_torch7_file(tmp_path, content, what):
    path = tmp_path / "x.t7"
    path.write_bytes(content)
    with pytest.raises(Torch7Error, match=rf"x\.t7 is not a Torch7 binary file.*{what}"):
        load_torch7(path)


def test_pytorch_checkpoint_is_not_torch7(net, tmp_path):
    path = tmp_path / "model.t7"
    torch.save(net.state_dict(), path)
    with pytest.raises(Torch7Error, match=r"looks like a zip archive \(a PyTorch \.pt checkpoint\?"):
        load_torch7(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(Torch7Error, match=r"Torch7 file not found: .*nothing\.t7"):
        load_torch7(tmp_path / "nothing.t7")
    (tmp_path / "empty.t7").write_bytes(b"")
    with pytest.raises(Torch7Error, match=r"empty \(0 bytes\)"):
        load_torch7(tmp_path / "empty.t7")
    assert issubclass(Torch7Error, CheckpointError)


def test_corrupt_type_tag(t7_file, tmp_path):
    data = bytearray(t7_file.read_bytes())
    data[12:16] = (77).to_bytes(4, "little")  # tag, index, size, then the first key: a bad tag
    path = tmp_path / "bad.t7"
    path.write_bytes(bytes(data))
    with pytest.raises(Torch7Error, match=r"unknown Torch7 object type 77 at byte 12"):
        read_t7(path)


def test_tensor_pointing_outside_its_storage(tmp_path):
    bad = W.T7Tensor(np.zeros(4, np.float32), size=(3, 3), stride=(3, 1))
    path = W.save(tmp_path / "t.t7", {"w": bad})
    with pytest.raises(Torch7Error, match=r"needs 9 elements of its storage, which has 4"):
        read_t7(path)


def test_shared_storage_views_are_read_correctly(tmp_path):
    storage = np.arange(12, dtype=np.float32)
    a = W.T7Tensor(storage, size=(2, 3), stride=(3, 1), offset=1)
    b = W.T7Tensor(storage, size=(3, 2), stride=(1, 3), offset=7)  # a transposed view, offset 6
    obj = read_t7(W.save(tmp_path / "s.t7", [a, b]))
    assert np.array_equal(obj[0], storage[:6].reshape(2, 3))
    assert np.array_equal(obj[1], storage[6:].reshape(2, 3).T)


def _mutate(modules: list, index: int, new) -> list:
    out = list(modules)
    out[index] = new
    return out


def _conv(cin, cout, k=3, stride=1, pad=1, dilation=None):
    return W.spatial_convolution(np.zeros((cout, cin, k, k), np.float32), np.zeros(cout, np.float32),
                                 stride, pad, dilation=dilation)


@pytest.mark.parametrize("change, message", [
    (lambda m: _mutate(m, 18, _conv(32, 32, pad=2, dilation=1)),
     r"Table 1 layer 7 \(dilated conv 3x3, dilation 2, stride 1\) at model\.modules\[19\]: dilation is 1 "
     r"in the file, Table 1 says 2"),
    (lambda m: _mutate(m, 3, _conv(8, 16, stride=1)),
     r"Table 1 layer 2 \(conv 3x3, stride 2\) at model\.modules\[4\]: stride is 1 in the file, Table 1 says 2"),
    (lambda m: _mutate(m, 12, _conv(32, 24, pad=1, dilation=1)),
     r"Table 1 layer 5 \(conv 3x3, stride 1\) at model\.modules\[13\]: has 24 output channels; Table 1 at "
     r"the width inferred from the first layer expects 32"),
    (lambda m: _mutate(m, 36, _conv(32, 16)),
     r"Table 1 layer 13 \(deconv 4x4, stride 1/2\): expected a transposed convolution "
     r"\(nn.SpatialFullConvolution\), found nn.SpatialConvolution at model\.modules\[37\]"),
    (lambda m: _mutate(m, 2, W.T7Object("nn.LeakyReLU", {"negval": 0.2})),
     r"Table 1 layer 1 \(conv 5x5, stride 1\): expected a ReLU \(nn.ReLU\), found nn.LeakyReLU at model\.modules\[3\]"),
    (lambda m: m[:-1],
     r"the network ends after 49 modules, but Table 1 layer 17 \(output conv 3x3, stride 1\) still needs a sigmoid"),
    (lambda m: m + [W.relu()],
     r"the network has 1 more modules after Table 1's final sigmoid: model\.modules\[51\] nn\.ReLU"),
    (lambda m: [_conv(4, 8, k=5, stride=2, pad=2), W.spatial_batch_norm(np.zeros(8, np.float32),
                                                                          np.ones(8, np.float32)), W.relu()],
     r"Table 1 layer 1 \(conv 5x5, stride 1\) at model\.modules\[1\]: stride is 2 in the file, Table 1 says 1"),
    (lambda m: [_conv(3, 64, k=5, stride=1, pad=2)] + m[1:],
     r"Table 1 layer 1 at model\.modules\[1\]: takes 3 input channels; the completion network takes 4"),
    (lambda m: [W.T7Object("nn.gModule", {"forwardnodes": []})],
     r"model\.modules\[1\] is a nn\.gModule container: only nn\.Sequential models"),
])
def test_other_architectures_name_the_layer(net, tmp_path, change, message):
    path = write_t7(tmp_path / "other.t7", change(torch7_modules(net)))
    with pytest.raises(Torch7Error, match=rf"other\.t7: {message}"):
        load_torch7(path)


def test_batch_norm_without_statistics(net, tmp_path):
    mods = torch7_modules(net)
    del mods[4].fields["running_var"]
    with pytest.raises(Torch7Error, match=r"Table 1 layer 2 \(conv 3x3, stride 2\) batch norm at "
                                          r"model\.modules\[5\]: has neither running_var nor running_std"):
        load_torch7(write_t7(tmp_path / "nobn.t7", mods))


def test_nan_weights_are_refused(net, tmp_path):
    mods = torch7_modules(net)
    mods[0].fields["weight"] = mods[0].fields["weight"].copy()
    mods[0].fields["weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(Torch7Error, match=r"Table 1 layer 1 .*: weight contains NaN or infinite values"):
        load_torch7(write_t7(tmp_path / "nan.t7", mods))


# ---------------------------------------------------------------------------------------------
# Converting, loading by name
# ---------------------------------------------------------------------------------------------

def test_convert_torch7_cli(net, t7_file, tmp_path, capsys):
    out = tmp_path / "places2.pt"
    assert run(["convert-torch7", str(t7_file), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verified" in printed and "CC BY-NC-SA 4.0" in printed
    ckpt = read_checkpoint(out)
    assert ckpt["completion"]["config"] == {"arch": "CompletionNetwork", "width": WIDTH, "input_mode": "subtract",
                                           "output_mode": "direct"}
    assert ckpt["meta"]["authors_model"] == "places2" and "CC BY-NC-SA" in ckpt["meta"]["licence"]
    # issue 22: the converted network's own bfloat16 error is measured and stored, and said
    measured = ckpt["meta"]["reduced_precision"]["bfloat16"]
    assert measured["device"] == "cpu" and measured["images"] == 8 and measured["mean"] >= 0
    assert "reduced precision: bfloat16 on cpu: " in printed and "complete(precision='auto') on this CPU: " in printed
    model = load_completion(out)
    assert torch.allclose(outputs(model), outputs(net), atol=1e-6, rtol=0)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
    mask = np.zeros((36, 40), bool)
    mask[5:25, 12:30] = True
    a = glcic_lib.complete(str(out), image, mask, device="cpu")
    b = glcic_lib.complete(load_torch7(t7_file).model, image, mask, device="cpu")
    assert np.array_equal(a, b) and np.array_equal(a[~mask], image[~mask])
    assert torch.equal(outputs(glcic_lib.load_pretrained(str(out))), outputs(model))


def test_convert_torch7_cli_default_output_and_mean(net, tmp_path, capsys):
    src = write_t7(tmp_path / "bare.t7", torch7_modules(net), mean=None)
    assert run(["convert-torch7", str(src), "--mean", "0.5", "0.4", "0.3"]) == 0
    ckpt = read_checkpoint(tmp_path / "bare.pt")
    assert ckpt["meta"]["mean_pixel"] == pytest.approx([0.5, 0.4, 0.3])
    assert ckpt["meta"]["authors_model"] is None


def test_convert_torch7_cli_reports_errors(tmp_path, capsys):
    bad = tmp_path / "bad.t7"
    bad.write_bytes(b"<html>nope</html>")
    assert run(["convert-torch7", str(bad), str(tmp_path / "o.pt")]) == 2
    assert "glcic convert-torch7: error:" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


@pytest.fixture
def search_dirs(tmp_path, monkeypatch):
    """Point $GLCIC_CKPT and the bundled data folder at empty temporary folders."""
    ckpt, data = tmp_path / "ckpt", tmp_path / "data"
    (data / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("GLCIC_CKPT", str(ckpt))
    monkeypatch.setattr(pretrained, "bundled_data_dir", lambda: data)
    return ckpt, data / "checkpoints"


def test_load_pretrained_authors(net, t7_file, search_dirs):
    ckpt, bundled = search_dirs
    assert pretrained.authors_model_path() is None
    with pytest.raises(CheckpointError, match=r"the authors' places2 model \(completionnet_places2\.t7\) is not "
                                              r"here: download it with glcic_lib\.pretrained\.download_authors_model"
                                              r"\('places2'\) or by hand from http://iizuka\.cs\.tsukuba\.ac\.jp/"):
        glcic_lib.load_pretrained("authors")
    with pytest.raises(CheckpointError, match=r"unknown authors' model 'imagenet'; choose one of"):
        glcic_lib.load_pretrained("authors:imagenet")
    assert "authors' Places2 model" not in pretrained.model_choices()
    (bundled / "completionnet_places2.t7").write_bytes(t7_file.read_bytes())
    assert pretrained.authors_model_path() == bundled / "completionnet_places2.t7"
    model = glcic_lib.load_pretrained("authors")
    assert torch.allclose(outputs(model), outputs(net), atol=1e-6, rtol=0)
    assert pretrained.model_choices()["authors' Places2 model"] == "authors:places2"
    ckpt.mkdir()
    (ckpt / "completionnet_places2.t7").write_bytes(t7_file.read_bytes())
    assert pretrained.authors_model_path() == ckpt / "completionnet_places2.t7"  # $GLCIC_CKPT first
    assert pretrained.authors_model_path("celeba") is None
    assert torch.equal(outputs(glcic_lib.load_pretrained(str(t7_file))), outputs(model))


def test_authors_models_table():
    assert set(pretrained.AUTHORS_MODELS) == {"places2", "places2_freeform", "celeba"}
    for name, entry in pretrained.AUTHORS_MODELS.items():
        assert entry.url.endswith("/" + entry.filename) and entry.filename == f"completionnet_{name}.t7"
        assert "CC BY-NC-SA 4.0" in entry.licence and "non-commercial" in entry.licence


# ---------------------------------------------------------------------------------------------
# Downloading, against a local stand-in server
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    """A local HTTP server for ``tmp_path/www``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


def test_download_authors_model(server, t7_file, tmp_path, capsys):
    root, base = server
    (root / "completionnet_places2.t7").write_bytes(t7_file.read_bytes())
    dest = tmp_path / "models"
    md5 = hashlib.md5(t7_file.read_bytes()).hexdigest()  # the stand-in's own checksum
    path = pretrained.download_authors_model("places2", dest=dest, url=f"{base}/completionnet_places2.t7",
                                             progress=False, md5=md5)
    assert path == dest / "completionnet_places2.t7"
    assert path.read_bytes() == t7_file.read_bytes()
    assert "CC BY-NC-SA 4.0" in capsys.readouterr().out
    assert load_torch7(path).width == WIDTH
    again = pretrained.download_authors_model("places2", dest=dest, url=f"{base}/missing.t7", progress=False,
                                              md5=md5)
    assert again == path and "already here" in capsys.readouterr().out  # kept, not fetched


def test_download_falls_back_to_the_mirror(server, t7_file, tmp_path, monkeypatch):
    root, base = server
    (root / "old.t7").write_bytes(t7_file.read_bytes())
    entry = pretrained.AUTHORS_MODELS["places2"]
    moved = dataclasses.replace(entry, url=f"{base}/gone.t7", mirrors=(f"{base}/old.t7",),
                                md5=hashlib.md5(t7_file.read_bytes()).hexdigest())
    monkeypatch.setitem(pretrained.AUTHORS_MODELS, "places2", moved)
    path = pretrained.download_authors_model(dest=tmp_path / "m" / "mine.t7", progress=False)
    assert path == tmp_path / "m" / "mine.t7" and path.read_bytes() == t7_file.read_bytes()


def test_download_checks_the_published_md5(server, t7_file, tmp_path, capsys):
    """A file that is a Torch7 file but not the authors' (or a damaged one) is refused by its md5."""
    assert pretrained.AUTHORS_MODELS["places2"].md5 == "b1527543a0ee22c23fca44cefdf48531"
    root, base = server
    (root / "completionnet_places2.t7").write_bytes(t7_file.read_bytes())
    got = hashlib.md5(t7_file.read_bytes()).hexdigest()
    assert pretrained.file_md5(t7_file) == got
    dest = tmp_path / "models"
    with pytest.raises(Torch7Error, match=rf"could not download the authors' places2 model: .*completionnet_places2\.t7: "
                                          rf"refused the download: its md5 is {got}, not the published "
                                          rf"b1527543a0ee22c23fca44cefdf48531: the file is corrupt"):
        pretrained.download_authors_model("places2", dest=dest, url=f"{base}/completionnet_places2.t7", progress=False)
    assert list(dest.iterdir()) == []  # nothing saved
    # a file already there that fails the check is not trusted: it is downloaded again
    (dest / "completionnet_places2.t7").write_bytes(t7_file.read_bytes()[:-10])  # truncated
    path = pretrained.download_authors_model("places2", dest=dest, url=f"{base}/completionnet_places2.t7",
                                             progress=False, md5=got)
    out = capsys.readouterr().out
    assert "is here but its md5 is" in out and "downloading it again" in out and "md5 checked" in out
    assert path.read_bytes() == t7_file.read_bytes()
    # md5=None checks nothing (your own mirror of another file)
    other = pretrained.download_authors_model("places2", dest=tmp_path / "o", url=f"{base}/completionnet_places2.t7",
                                              progress=False, md5=None)
    assert "no published md5 to check" in capsys.readouterr().out and other.read_bytes() == t7_file.read_bytes()


def test_download_refuses_html_and_404(server, tmp_path):
    root, base = server
    (root / "page.t7").write_bytes(b"<!DOCTYPE html><html>please log in</html>")
    dest = tmp_path / "d"
    with pytest.raises(Torch7Error, match=r"could not download the authors' places2 model: .*page\.t7: the server "
                                          r"did not send a Torch7 file but an HTML/XML page"):
        pretrained.download_authors_model(dest=dest, url=f"{base}/page.t7", progress=False)
    with pytest.raises(Torch7Error, match=r"missing\.t7: HTTP 404 .*Download http://iizuka"):
        pretrained.download_authors_model(dest=dest, url=f"{base}/missing.t7", progress=False)
    assert list(dest.iterdir()) == []  # no partial files left behind
    with pytest.raises(ValueError, match=r"unknown authors' model 'faces'"):
        pretrained.download_authors_model("faces", dest=dest)


def test_writer_round_trip_of_plain_values():
    """The test writer itself: Lua values and shared references come back as written."""
    shared = np.arange(4, dtype=np.float32)
    obj = read_t7_bytes(W.dumps({"n": 2.5, "i": 3, "s": "abc", "b": False, "l": [1, 2, 3], "x": shared, "y": shared}))
    assert obj[b"n"] == 2.5 and obj[b"i"] == 3 and obj[b"s"] == b"abc" and obj[b"b"] is False
    assert obj[b"l"] == [1, 2, 3] and np.array_equal(obj[b"x"], shared) and obj[b"x"] is obj[b"y"]


def read_t7_bytes(data: bytes):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "v.t7"
        path.write_bytes(data)
        return read_t7(path)

