"""The command line: ``inpaint`` end to end on files, error reporting, the parser."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import random_image
from glcic_lib import cli
from glcic_lib.checkpoint import save_checkpoint
from glcic_lib.imageio import read_image, write_image


@pytest.fixture(scope="module")
def files(tmp_path_factory, small_model):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    image = random_image(rng, 45, 62)  # not multiples of 4
    mask = np.zeros((45, 62), bool)
    mask[10:30, 20:40] = True
    mask[40:, :8] = True  # at the border
    write_image(d / "in.png", image)
    grey_mask = np.where(mask, 255, 0).astype(np.uint8)
    write_image(d / "mask.png", np.dstack([grey_mask] * 3))  # an RGB mask file: white = hole
    ckpt = save_checkpoint(d / "model.pt", small_model)
    return {"dir": d, "image": image, "mask": mask, "ckpt": ckpt}


def _inpaint(files, out, *extra):
    return cli.run(["inpaint", "--image", str(files["dir"] / "in.png"), "--mask", str(files["dir"] / "mask.png"),
                    "--out", str(out), "--checkpoint", str(files["ckpt"]), *extra])


@pytest.mark.parametrize("flag", ["--postprocess", "--no-postprocess"])
def test_inpaint_end_to_end(files, small_model, tmp_path, capsys, flag):
    from glcic_lib import complete

    out = tmp_path / "deep" / "out.png"
    assert _inpaint(files, out, flag, "--device", "cpu") == 0
    assert "wrote" in capsys.readouterr().out
    done = read_image(out)
    image, mask = files["image"], files["mask"]
    assert done.shape == image.shape
    assert np.array_equal(done[~mask], image[~mask])  # PNG is lossless: known pixels exact
    want = complete(small_model, image, mask, postprocess=flag == "--postprocess")
    assert np.array_equal(done, want)


def test_inpaint_reports_bad_input(files, tmp_path, capsys):
    small = tmp_path / "small_mask.png"
    write_image(small, np.zeros((10, 10), np.uint8))
    code = cli.run(["inpaint", "--image", str(files["dir"] / "in.png"), "--mask", str(small),
                    "--out", str(tmp_path / "o.png"), "--checkpoint", str(files["ckpt"])])
    assert code == 2
    assert "glcic inpaint: error: mask" in capsys.readouterr().err
    code = _inpaint({**files, "ckpt": tmp_path / "missing.pt"}, tmp_path / "o.png")
    assert code == 2 and "checkpoint not found" in capsys.readouterr().err
    code = cli.run(["inpaint", "--image", str(tmp_path / "none.png"), "--mask", str(small), "--out", "x.png"])
    assert code == 2 and "image file not found" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_parser_and_help(capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["inpaint", "--image", "a", "--mask", "b", "--out", "c"])
    assert args.postprocess is True and args.checkpoint is None  # post-processing on by default
    assert {"inpaint", "bench"} <= set(cli.COMMANDS)
    with pytest.raises(SystemExit) as e:
        cli.run(["--help"])
    assert e.value.code == 0
    assert "inpaint" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.run(["inpaint", "--image", "a"])  # --mask and --out are required
    assert "required" in capsys.readouterr().err


def test_python_dash_m(files, tmp_path):
    out = tmp_path / "o.png"
    proc = subprocess.run([sys.executable, "-m", "glcic_lib", "inpaint", "--image", str(files["dir"] / "in.png"),
                           "--mask", str(files["dir"] / "mask.png"), "--out", str(out),
                           "--checkpoint", str(files["ckpt"]), "--no-postprocess"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_image(out).shape == files["image"].shape
