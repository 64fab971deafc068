"""The trainer: presets, the three-phase schedule, the correctness pins of issue 3, checkpoints
and resuming, learning, the command line.  Everything runs at 64x64 with quarter-width networks."""
import json

import cv2
import numpy as np
import pytest
import torch

from glcic_lib import cli, losses
from glcic_lib.checkpoint import CheckpointError, load_completion
from glcic_lib.masks import local_box
from glcic_lib.models import paste
from glcic_lib.train import PRESETS, Trainer, TrainConfig, crop_boxes, preset, throughput, train

TINY = dict(crop_size=64, batch_size=2, width=0.25, num_workers=0, amp=False, device="cpu", log_every=1,
            sample_every=1000, checkpoint_every=1000, n_samples=2, mean_pixel=(0.5, 0.5, 0.5))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Six smooth synthetic images (gradients and soft blobs): easy to learn, quick to load."""
    root = tmp_path_factory.mktemp("train_images")
    yy, xx = np.mgrid[0:72, 0:80].astype(np.float32)
    for i in range(6):
        r = 0.5 + 0.5 * np.sin(xx / (9 + i) + i)
        g = yy / 72
        b = np.exp(-((xx - 10 * i) ** 2 + (yy - 36) ** 2) / 300)
        img = (np.stack([r, g, b], -1) * 255).astype(np.uint8)
        cv2.imwrite(str(root / f"img{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def tiny(images, tmp_path, **kw):
    cfg = {**TINY, "t_c": 2, "t_d": 1, "t_joint": 2, **kw}
    return preset("smoke", data_dir=str(images), out_dir=str(tmp_path / "run"), **cfg)


def params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- config and presets

def test_presets_exist_and_the_paper_preset_is_the_paper():
    assert set(PRESETS) >= {"paper", "colab", "cpu", "smoke"}
    p = preset("paper")
    assert (p.batch_size, p.t_c, p.t_d, p.t_joint, p.crop_size) == (96, 90_000, 10_000, 400_000, 256)
    assert (p.alpha, p.optimizer, p.discriminator, p.hole_range, p.local_size) == (0.0004, "adadelta", "both",
                                                                                  (96, 128), 128)
    assert p.resize_range == (256, 384)
    s = preset("smoke")
    assert (s.crop_size, s.hole_range, s.local_size, s.width) == (64, (24, 32), 32, 0.25)
    c = preset("colab")
    assert c.crop_size == 256 and c.batch_size * c.accumulate >= 32
    assert preset("cpu", discriminator="none").discriminator == "none"


def test_preset_and_config_errors():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['bogus'\]"):
        preset("smoke", bogus=1)
    with pytest.raises(ValueError, match="discriminator must be one of"):
        TrainConfig(discriminator="middle")
    with pytest.raises(ValueError, match="crop_size must be a multiple of 64"):
        TrainConfig(crop_size=100)
    with pytest.raises(ValueError, match="so the local patch sees the whole hole"):
        TrainConfig(crop_size=64, hole_range=(30, 40))
    with pytest.raises(ValueError, match="nothing to train"):
        TrainConfig(t_c=0, t_d=0, t_joint=0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="sgd")


def test_phase_at_switches_exactly_at_tc_and_tc_plus_td():
    cfg = TrainConfig(t_c=5, t_d=3, t_joint=4)
    assert [cfg.phase_at(t) for t in range(12)] == ["completion"] * 5 + ["discriminator"] * 3 + ["joint"] * 4
    assert cfg.total == 12


# ----------------------------------------------------------------------------- the schedule in a real run

def test_run_switches_phases_and_updates_only_the_right_network(images, tmp_path):
    events = []
    cfg = tiny(images, tmp_path, t_c=2, t_d=2, t_joint=1)
    tr = Trainer(cfg, callbacks=[events.append], progress=False)
    before_c, before_d = params(tr.completion), params(tr.discriminator)
    changed = []
    for t in range(cfg.total):
        c0, d0 = params(tr.completion), params(tr.discriminator)
        phase = tr.step(t)["phase"]
        c_moved = any(not torch.equal(c0[k], v) for k, v in tr.completion.state_dict().items() if "weight" in k)
        d_moved = any(not torch.equal(d0[k], v) for k, v in tr.discriminator.state_dict().items())
        changed.append((phase, c_moved, d_moved))
    assert changed == [("completion", True, False), ("completion", True, False),
                       ("discriminator", False, True), ("discriminator", False, True),
                       ("joint", True, True)]
    # in phase 2 even the batch-norm statistics of the frozen completion network stay put
    assert before_c.keys() == params(tr.completion).keys()
    assert before_d.keys() == params(tr.discriminator).keys()


def test_history_and_callbacks_follow_the_phases(images, tmp_path):
    events = []
    result = train(tiny(images, tmp_path, t_c=2, t_d=1, t_joint=2), callbacks=[events.append], progress=False)
    assert [e["phase"] for e in events] == ["completion", "completion", "discriminator", "joint", "joint"]
    assert [e["iteration"] for e in events] == [1, 2, 3, 4, 5]
    assert all("mse" in e for e in events)
    assert "d_loss" in events[2] and "g_adv" in events[3] and "d_loss" in events[3]
    lines = [json.loads(s) for s in (result.out_dir / "history.jsonl").read_text().splitlines()]
    assert [h["iteration"] for h in lines] == [1, 2, 3, 4, 5] and lines == result.history
    assert sorted(p.name for p in (result.out_dir / "samples").glob("*.png")) == ["iter_000005.png"]
    model = load_completion(result.checkpoint)            # a normal glcic_lib checkpoint
    assert model.width == 0.25 and not model.training


# ----------------------------------------------------------------------------- correctness pins

@pytest.fixture
def joint_trainer(images, tmp_path):
    tr = Trainer(tiny(images, tmp_path, t_c=0, t_d=0, t_joint=3), progress=False)
    return tr, tr.next_micros(0)[0]


def test_discriminators_see_completed_images_with_known_pixels_pasted_back(joint_trainer):
    tr, micro = joint_trainer
    seen = []   # every (global image, local patch) pair the discriminator is shown
    hook = tr.discriminator.register_forward_pre_hook(lambda mod, args: seen.append([a.detach().clone()
                                                                                     for a in args]))
    with torch.no_grad():
        raw = tr.completion(micro["image"], micro["mask"])
    tr.discriminator_losses(micro, raw)        # D's step: completed, then real
    tr.generator_losses(micro)                 # C's adversarial term: completed
    hook.remove()
    x, m = micro["image"], micro["mask"].bool().expand_as(micro["image"])
    completed = paste(raw, x, micro["mask"])
    fake_d, real_d, fake_g = seen
    for whole, patch in (fake_d, fake_g):
        assert torch.equal(whole[~m], x[~m])                     # known pixels: the real ones, exactly
        assert not torch.equal(whole, raw)                       # not the raw network output
        assert torch.allclose(whole, completed, atol=1e-6)
        # the local patch is cut from the completed image around the hole
        assert torch.equal(patch, crop_boxes(whole, micro["box"]))
    # the real pair: the untouched image and its patch at the real box (a second hole M_d)
    assert torch.equal(real_d[0], x) and torch.equal(real_d[1], crop_boxes(x, micro["real_box"]))


def test_local_boxes_surround_the_holes_and_real_patches_are_documented(images, tmp_path):
    tr = Trainer(tiny(images, tmp_path), progress=False)
    holes, boxes, real = tr.holes(5, 0, 64)
    assert boxes == [local_box(h, 32, 64) for h in holes]
    assert real != boxes                                         # "random": a second hole M_d
    assert all(b.height == b.width == 32 and 0 <= b.top <= 32 and 0 <= b.left <= 32 for b in real)
    assert tr.holes(5, 0, 64) == (holes, boxes, real)            # seeded by (seed, iteration, micro)
    assert tr.holes(6, 0, 64)[0] != holes
    same = Trainer(tiny(images, tmp_path, real_patch="same"), progress=False)
    h2, b2, r2 = same.holes(5, 0, 64)
    assert r2 == b2


def test_adversarial_term_reaches_the_completion_network(joint_trainer):
    tr, micro = joint_trainer
    flags = [p.requires_grad for p in tr.discriminator.parameters()]
    parts = tr.generator_losses(micro)
    parts["adv"].backward()
    grads = [p.grad for p in tr.completion.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # ... through the discriminator, which itself receives no gradient from the completion step
    assert all(p.grad is None for p in tr.discriminator.parameters())
    # D's trainable parameters are trainable again, and the biases before batch norm stay frozen
    assert [p.requires_grad for p in tr.discriminator.parameters()] == flags and any(flags) and not all(flags)
    # and the joint loss really contains it, weighted by alpha
    assert parts["loss"].item() == pytest.approx(parts["mse"].item() + 0.0004 * parts["adv"].item(), rel=1e-6)


def test_alpha_changes_the_completion_step_and_none_has_no_adversarial_term(images, tmp_path):
    def joint_step(**kw):
        tr = Trainer(tiny(images, tmp_path, t_c=0, t_d=0, t_joint=1, optimizer="adam", **kw), progress=False)
        logs = tr.step(0)
        return params(tr.completion), logs

    with_gan, logs = joint_step(alpha=0.5)
    without, _ = joint_step(alpha=0.0)
    assert "g_adv" in logs and "d_loss" in logs
    assert any(not torch.equal(with_gan[k], without[k]) for k in with_gan if "weight" in k)
    tr = Trainer(tiny(images, tmp_path, discriminator="none", t_c=0, t_d=0, t_joint=1), progress=False)
    assert tr.discriminator is None
    parts = tr.generator_losses(tr.next_micros(0)[0])
    assert parts["adv"] is None and parts["loss"] is parts["mse"]
    assert set(tr.step(0)) == {"phase", "mse"}


def test_no_stale_gradients_after_any_step(joint_trainer):
    tr, _ = joint_trainer
    for t in range(2):
        tr.step(t)
        assert all(p.grad is None for p in tr.completion.parameters())
        assert all(p.grad is None for p in tr.discriminator.parameters())


def test_gradient_accumulation_reads_distinct_micro_batches(images, tmp_path):
    tr = Trainer(tiny(images, tmp_path, accumulate=3), progress=False)
    micros = tr.next_micros(0)
    assert len(micros) == 3 and tr.config.images_per_iteration == 6
    assert not torch.equal(micros[0]["image"], micros[1]["image"])
    assert micros[0]["holes"] != micros[1]["holes"]


# ----------------------------------------------------------------------------- checkpoints and resuming

def test_interrupt_and_resume_equals_an_uninterrupted_run(images, tmp_path):
    full = train(tiny(images, tmp_path / "a"), progress=False)

    def stop_at_3(event):
        if event["iteration"] == 3:
            raise KeyboardInterrupt

    cfg = tiny(images, tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[stop_at_3], progress=False)
    saved = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=False)
    assert saved["train_state"]["iteration"] == 3 and saved["train_state"]["phase"] == "joint"
    resumed = train(cfg, resume=True, progress=False)
    a, b = torch.load(full.checkpoint, weights_only=False), torch.load(resumed.checkpoint, weights_only=False)
    for net in ("completion", "discriminator"):
        for k, v in a[net]["state_dict"].items():
            assert torch.equal(v, b[net]["state_dict"][k]), f"{net}.{k} differs after resuming"
    keys = ("phase", "iteration", "mse", "d_loss", "g_adv")
    strip = lambda hist: [{k: h[k] for k in keys if k in h} for h in hist]
    assert strip(resumed.history) == strip(full.history)


def test_an_interrupt_inside_an_iteration_keeps_the_last_consistent_checkpoint(images, tmp_path, monkeypatch):
    cfg = tiny(images, tmp_path, t_c=4, t_d=0, t_joint=0, checkpoint_every=2)
    original = Trainer.update_completion

    def half_done(self, micros, adversarial, outputs=None):
        if self.iteration == 3:        # C has not stepped yet, but the interrupt lands mid-iteration
            raise KeyboardInterrupt
        return original(self, micros, adversarial, outputs)

    monkeypatch.setattr(Trainer, "update_completion", half_done)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False)
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert saved["train_state"]["iteration"] == 2      # the periodic one, not a half-done iteration 3


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_iteration_finishes_it_saves_it_and_says_which(images, tmp_path, monkeypatch, sig):
    """Ctrl-C / SIGTERM inside an iteration: the loop completes that iteration, saves *it*
    (not the older periodic checkpoint) and raises TrainingInterrupted naming the iteration."""
    import os
    import signal

    from glcic_lib.train import TrainingInterrupted

    cfg = tiny(images, tmp_path, t_c=6, t_d=0, t_joint=0, checkpoint_every=100)
    original = Trainer.update_completion

    def signalled(self, micros, adversarial, outputs=None):
        if self.iteration == 2:        # iteration 3 is half done when the signal arrives
            os.kill(os.getpid(), getattr(signal, sig))
        return original(self, micros, adversarial, outputs)

    monkeypatch.setattr(Trainer, "update_completion", signalled)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, progress=False)
    assert signal.getsignal(signal.SIGTERM) is before          # handlers restored
    e = info.value
    assert (e.iteration, e.saved_iteration, e.reason) == (3, 3, sig)
    assert f"after iteration 3: {e.checkpoint} holds iteration 3; continue with --resume" in str(e)
    saved = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert saved["train_state"]["iteration"] == 3
    monkeypatch.setattr(Trainer, "update_completion", original)
    assert train(cfg, resume=True, progress=False).history[-1]["iteration"] == 6


def test_a_second_signal_stops_at_once_and_says_nothing_was_saved(images, tmp_path, monkeypatch):
    import os
    import signal

    from glcic_lib.train import TrainingInterrupted

    cfg = tiny(images, tmp_path, t_c=6, t_d=0, t_joint=0, checkpoint_every=100)
    original = Trainer.update_completion

    def impatient(self, micros, adversarial, outputs=None):
        if self.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)   # the second one raises here, mid-iteration
        return original(self, micros, adversarial, outputs)

    monkeypatch.setattr(Trainer, "update_completion", impatient)
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, progress=False)
    assert info.value.saved_iteration is None and info.value.iteration == 1
    assert "before any checkpoint was saved: nothing to resume" in str(info.value)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_command_line_reports_the_saved_iteration_on_sigterm(images, tmp_path):
    """``glcic train`` killed with SIGTERM: exit 130 and one line naming the saved iteration."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "glcic_lib", "train", "--preset", "smoke", "--data", str(images), "--out", str(out),
           "--iterations", "400", "0", "0", "--log-every", "1", "--checkpoint-every", "1000", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    history = out / "history.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.exists() and history.read_text().count("\n") >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, text
    saved = torch.load(out / "checkpoint.pt", weights_only=False)["train_state"]["iteration"]
    assert 2 <= saved < 400
    assert f"interrupted (SIGTERM) after iteration {saved}: " in text and f"holds iteration {saved}" in text
    assert "Traceback" not in text


def test_existing_runs_are_not_overwritten_by_accident(images, tmp_path):
    cfg = tiny(images, tmp_path, t_c=1, t_d=0, t_joint=0)
    train(cfg, progress=False)
    with pytest.raises(CheckpointError, match="already holds a run .* resume=True"):
        train(cfg, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(tiny(images, tmp_path / "fresh", t_c=1, t_d=0, t_joint=0), resume=True, progress=False)


def test_corrupt_and_mismatched_checkpoints_are_clear_errors(images, tmp_path):
    cfg = tiny(images, tmp_path, t_c=1, t_d=0, t_joint=0)
    result = train(cfg, progress=False)
    with pytest.raises(CheckpointError, match="trained with width=0.25 but this run has width=0.5"):
        train(tiny(images, tmp_path, t_c=1, t_d=0, t_joint=0, width=0.5), resume=True, progress=False)
    with pytest.raises(CheckpointError, match="trained with discriminator='both' but this run has "
                                              "discriminator='none'"):
        train(tiny(images, tmp_path, t_c=1, t_d=0, t_joint=0, discriminator="none"), resume=True, progress=False)
    data = result.checkpoint.read_bytes()
    result.checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or not a PyTorch checkpoint"):
        train(cfg, resume=True, progress=False)


def test_init_from_starts_from_another_runs_completion_network(images, tmp_path):
    first = train(tiny(images, tmp_path / "a", t_c=1, t_d=0, t_joint=0), progress=False)
    tr = Trainer(tiny(images, tmp_path / "b", init_from=str(first.checkpoint), mean_pixel=(0.1, 0.2, 0.3)),
                 progress=False)
    start = load_completion(first.checkpoint).state_dict()
    for k, v in tr.completion.state_dict().items():
        if k != "mean_pixel":
            assert torch.equal(v, start[k]), k
    assert tr.completion.mean_pixel.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(CheckpointError, match="has width 0.25, this run width 0.5"):
        Trainer(tiny(images, tmp_path / "c", init_from=str(first.checkpoint), width=0.5), progress=False)


def test_init_from_keeps_the_start_models_input_convention_also_on_resume(images, tmp_path):
    from glcic_lib.checkpoint import save_checkpoint
    from glcic_lib.models import CompletionNetwork

    start = save_checkpoint(tmp_path / "authors_like.pt", CompletionNetwork(width=0.25, input_mode="subtract"))
    cfg = tiny(images, tmp_path / "ft", init_from=str(start), t_c=1, t_d=0, t_joint=0)
    result = train(cfg, progress=False)
    assert load_completion(result.checkpoint).input_mode == "subtract"
    resumed = Trainer(tiny(images, tmp_path / "ft", init_from=str(start), t_c=2, t_d=0, t_joint=0), progress=False)
    resumed.load(result.checkpoint)
    assert resumed.completion.input_mode == "subtract"


def test_learning_phase_one_drives_the_hole_mse_down(images, tmp_path):
    """Not just running: on six images the masked MSE falls far below its starting value."""
    cfg = tiny(images, tmp_path, t_c=40, t_d=0, t_joint=0, optimizer="adam", lr=3e-3, log_every=5)
    tr = Trainer(cfg, progress=False)
    x = tr.next_micros(0)[0]                       # a fixed probe batch with fixed holes
    # batch statistics (train mode): after 40 steps of 2 images the running means of batch norm
    # are not settled, and an eval-mode probe measures them more than the learnt weights
    probe = lambda: float(losses.masked_mse(tr.completion.train()(x["image"], x["mask"]), x["image"], x["mask"]))
    with torch.no_grad():
        start = probe()
    result = tr.run()
    with torch.no_grad():
        end = probe()
    assert end < 0.4 * start, (start, end, [h["mse"] for h in result.history])


# ----------------------------------------------------------------------------- command line and benchmark

def test_cli_trains_and_reports_errors(images, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["train", "--preset", "smoke", "--data", str(images), "--out", str(out), "--iterations", "1", "1", "1",
            "--batch-size", "2", "--no-progress", "--device", "cpu"]
    assert cli.run(argv) == 0
    assert "done: 3 iterations" in capsys.readouterr().out
    assert (out / "checkpoint.pt").exists() and (out / "config.json").exists()
    assert cli.run(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert cli.run(argv + ["--resume", "--width", "0.5"]) == 2
    assert "trained with width=0.25" in capsys.readouterr().err


def test_throughput_reports_every_phase(images):
    r = throughput("smoke", steps=1, data_dir=images, device="cpu", batch_size=2)
    assert r["preset"] == "smoke"
    for key in ("completion", "discriminator", "joint", "loader"):
        assert r[key] > 0


@pytest.mark.parametrize("layout, channels_last", [("contiguous", False), ("channels_last", True)])
def test_benchmark_compares_memory_formats(images, capsys, layout, channels_last, monkeypatch):
    """--memory-format reaches the trainer (the same run can time both layouts) and the JSON says which."""
    import glcic_lib.train as train_mod

    seen = []
    real = train_mod.throughput

    def spy(*a, **k):
        seen.append(k.get("channels_last"))
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "throughput", spy)
    argv = ["train", "--preset", "smoke", "--data", str(images), "--benchmark", "1", "--batch-size", "2",
            "--device", "cpu", "--memory-format", layout]
    assert cli.run(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["memory_format"] == layout and out["joint"] > 0
    assert seen == [channels_last]


def test_mixed_holes_reach_the_masks_and_the_local_patch_is_centred_on_their_bounding_box(images, tmp_path):
    from glcic_lib.masks import MaskHole
    from glcic_lib.steps import hole_box

    tr = Trainer(tiny(images, tmp_path, holes="mixed"), progress=False)
    micro = tr.next_micros(0)[0]
    assert all(isinstance(h, MaskHole) for h in micro["holes"])
    for h, m, b in zip(micro["holes"], micro["mask"], micro["box"]):
        assert torch.equal(m[0].cpu().bool(), torch.from_numpy(h.mask))
        assert b == local_box(hole_box(h), tr.config.local_size, tr.config.crop_size)
    assert tr.holes(3, 0, 8) == tr.holes(3, 0, 8)            # seeded like the paper's holes
    with pytest.raises(ValueError, match="holes must be one of"):
        tiny(images, tmp_path, holes="circles")


def test_known_weight_adds_the_mse_of_the_known_pixels(images, tmp_path):
    from glcic_lib import losses

    tr = Trainer(tiny(images, tmp_path, known_weight=0.5), progress=False)
    micro = tr.next_micros(0)[0]
    parts = tr.generator_losses(micro, adversarial=False)
    out, x, m = parts["output"], micro["image"], micro["mask"]
    expected = losses.masked_mse(out, x, m) + 0.5 * losses.masked_mse(out, x, 1 - m)
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["mse"].item() == pytest.approx(losses.masked_mse(out, x, m).item(), rel=1e-6)   # logged: holes
    plain = Trainer(tiny(images, tmp_path / "b"), progress=False)
    assert plain.config.known_weight == 0 and plain.config.holes == "rect"   # the paper by default
    with pytest.raises(ValueError, match="known_weight"):
        tiny(images, tmp_path, known_weight=-1)


def test_demo_preset_is_the_documented_recipe():
    cfg = preset("demo")
    assert (cfg.crop_size, cfg.width, cfg.batch_size, cfg.holes, cfg.optimizer) == (128, 0.25, 16, "mixed", "adam")
    assert cfg.known_weight > 0 and cfg.chroma_weight > 1 and cfg.hole_range[1] <= cfg.local_size
    for small in (cfg, preset("cpu")):      # the small-network recipe of the model card
        assert (small.input_mode, small.output_mode, small.deconv_init) == ("smooth", "residual", "bilinear")
    assert preset("cpu").joint_lr < preset("cpu").lr
    paper = preset("paper")
    assert (paper.holes, paper.known_weight, paper.optimizer) == ("rect", 0.0, "adadelta")
    assert (paper.input_mode, paper.output_mode, paper.deconv_init, paper.joint_lr) == ("fill", "direct", "default", None)


def test_discriminator_learning_rate_can_differ_from_the_completion_networks(images, tmp_path):
    tr = Trainer(tiny(images, tmp_path, optimizer="adam", lr=1e-3, d_lr=1e-5), progress=False)
    assert tr.opt_c.param_groups[0]["lr"] == 1e-3 and tr.opt_d.param_groups[0]["lr"] == 1e-5
    same = Trainer(tiny(images, tmp_path / "b", optimizer="adam", lr=3e-4), progress=False)
    assert same.opt_d.param_groups[0]["lr"] == 3e-4          # one rate for both, as in the paper
    with pytest.raises(ValueError, match="d_lr"):
        tiny(images, tmp_path, d_lr=0)


def test_joint_lr_lowers_the_completion_networks_rate_once_the_discriminators_play(images, tmp_path):
    tr = Trainer(tiny(images, tmp_path, optimizer="adam", lr=1e-3, joint_lr=2e-4), progress=False)
    rates = []
    for it in range(tr.config.total):        # 2 completion, 1 discriminator, 2 joint iterations
        tr.step(it)
        rates.append(tr.opt_c.param_groups[0]["lr"])
    assert rates == [1e-3, 1e-3, 2e-4, 2e-4, 2e-4]
    plain = Trainer(tiny(images, tmp_path / "b", optimizer="adam", lr=1e-3), progress=False)
    for it in range(plain.config.total):
        plain.step(it)
    assert plain.opt_c.param_groups[0]["lr"] == 1e-3     # one rate throughout, as in the paper
    with pytest.raises(ValueError, match="joint_lr"):
        tiny(images, tmp_path, joint_lr=-1)


def test_smooth_input_and_bilinear_deconv_init_reach_the_network(images, tmp_path):
    from glcic_lib.checkpoint import load_completion

    tr = Trainer(tiny(images, tmp_path, input_mode="smooth", deconv_init="bilinear"), progress=False)
    deconv = [m for m in tr.completion.modules() if isinstance(m, torch.nn.ConvTranspose2d)][0]
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 4
    w = deconv.weight.detach()
    assert torch.allclose(w, w[:, :, 1:2, 1:2] / (9 / 16) * torch.outer(taps, taps), atol=1e-6)
    result = tr.run()
    assert load_completion(result.checkpoint).input_mode == "smooth"
    with pytest.raises(ValueError, match="deconv_init"):
        tiny(images, tmp_path, deconv_init="zeros")


def test_grid_weight_adds_the_grid_penalty_and_logs_it(images, tmp_path):
    from glcic_lib import losses

    tr = Trainer(tiny(images, tmp_path, grid_weight=2.0), progress=False)
    micro = tr.next_micros(0)[0]
    parts = tr.generator_losses(micro, adversarial=False)
    out, x, m = parts["output"], micro["image"], micro["mask"]
    expected = losses.masked_mse(out, x, m) + 2.0 * losses.grid_penalty(out, m)
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert "grid" in tr.update_completion([micro], adversarial=False)
    assert preset("paper").grid_weight == 0
    with pytest.raises(ValueError, match="grid_weight"):
        tiny(images, tmp_path, grid_weight=-1)
