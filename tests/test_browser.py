"""The widgets in a real browser: JupyterLab + Debian's Chromium, driven by Playwright.

What a learner does, done by a robot:

1. start JupyterLab on a free localhost port with a random token (its own config, runtime and
   settings folders in a temporary directory, so nothing of the user's is read or written);
2. open a copy of ``notebooks/08_interactive_inpainting.ipynb`` (with one extra cell at the end
   that reports the painter's state as JSON) and run all cells in smoke mode;
3. **painter**: drag the mouse across the painter's canvas, click "Complete", wait for the new
   result images, then run the extra cell and check that the mask Python computed from the
   synced stroke lies where the mouse went (and that the completion used it);
4. **explorer**: click a pixel on the receptive-field picture and check that the explorer's
   numbers now describe the output pixel under the mouse.

Screenshots go to ``artifacts/`` (gitignored).  JupyterLab is shut down by the fixture's
finaliser even when a test fails.  Playwright's own browser downloads are never used: the
tests launch ``/usr/bin/chromium`` (``apt-get install chromium``).  Without Chromium (or
Playwright) the tests skip and say why, unless ``GLCIC_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
where a missing browser is a failure.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "08_interactive_inpainting.ipynb"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path(os.environ.get("GLCIC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage"]
#: Generous: CI machines have 2 busy cores; each wait returns as soon as its condition holds.
SERVER_START_S = 90
RUN_ALL_S = 150
STEP_S = 60

#: The extra cell appended to the notebook copy: the painter's state, as Python sees it.
CHECK_CELL = """
import json as _json
import numpy as _np
_check_runs = globals().get("_check_runs", 0) + 1
_mask, _prev = painter.mask, globals().get("_check_mask")
_last = painter.strokes[-1] if painter.strokes else None
_report = {"run": _check_runs, "shape": list(_mask.shape), "n_strokes": len(painter.strokes), "last": _last,
           "hole_pixels": int(_mask.sum()), "message": painter.message.value}
if _last and _last.get("kind") == "brush":
    _lm = painting.rasterize([_last], _mask.shape)
    (_x0, _y0), (_x1, _y1) = [[int(round(v)) for v in p] for p in (_last["points"][0], _last["points"][-1])]
    _report.update(
        last_box=painting.mask_box(_lm),
        new_is_last=None if _prev is None else bool(_np.array_equal(_mask & ~_prev, _lm & ~_prev)),
        line_covered=bool(_mask[_y0, min(_x0, _x1):max(_x0, _x1) + 1].all()) if _y0 == _y1 else None,
        result_uses_mask=painter.result is not None and bool(_np.array_equal(painter.result.mask, _mask)))
_check_mask = _mask
print("GLCIC-CHECK " + _json.dumps(_report))
""".strip()
READY_CELL = 'print("GLCIC-READY")'


def _require(reason: str):
    if os.environ.get("GLCIC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"GLCIC_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and everything it started (kernels): its own process group."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A running JupyterLab serving a copy of notebook 08 (+ the check cell); yields its URL."""
    if not CHROMIUM.exists():
        _require(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        _require(f"Python Playwright is not installed ({e})")
    try:
        import jupyterlab  # noqa: F401
    except ImportError as e:
        _require(f"JupyterLab is not installed ({e})")

    work = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(READY_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    nbformat.write(nb, str(work / NOTEBOOK.name))

    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ, GLCIC_SMOKE="1", GLCIC_CKPT=str(work / "ckpt"),
               JUPYTER_CONFIG_DIR=str(work / "config"), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
               JUPYTER_PLATFORM_DIRS="1")
    # the lab's "news" and update checks would reach the internet: off; start the notebook's
    # kernel without asking (the "Select Kernel" dialog is still accepted if it shows)
    settings = {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                "docmanager-extension/plugin": {"autoStartDefaultKernel": True},
                "notebook-extension/tracker": {"windowingMode": "none"}}  # every cell stays in the DOM
    for name, values in settings.items():
        path = work / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    log = work / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
           f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={work}",
           "--ServerApp.open_browser=False", "--LabApp.news_url=", "--ServerApp.port_retries=0"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/status?token={token}", proc, log, SERVER_START_S)
        yield {"base": base, "token": token, "notebook": NOTEBOOK.name, "log": log, "work": work}
    finally:
        _stop(proc)
        ARTIFACTS.mkdir(exist_ok=True)
        if log.exists():
            shutil.copy(log, ARTIFACTS / "browser-jupyterlab.log")


@pytest.fixture(scope="module")
def page(lab):
    """Chromium showing the notebook after "Run All Cells" has finished."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("browser-*.png"):  # this test's screenshots from an earlier run
        old.unlink()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = context.new_page()
            pg.set_default_timeout(STEP_S * 1000)
            console = []
            pg.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            pg.goto(f"{lab['base']}/lab/tree/{lab['notebook']}?token={lab['token']}")
            pg.locator(".jp-Notebook").first.wait_for()
            time.sleep(2)  # let JupyterLab decide whether to ask for a kernel
            _wait_kernel_idle(pg)
            _accept_dialogs(pg)
            pg.get_by_role("menuitem", name="Run", exact=True).click()
            pg.get_by_text("Run All Cells", exact=True).click()
            ready = pg.locator(".jp-OutputArea-output", has_text="GLCIC-READY").first
            deadline = time.monotonic() + RUN_ALL_S
            idle_polls = 0  # a cell that fails stops "Run All": the kernel then stays idle without READY
            while time.monotonic() < deadline and not ready.count() and idle_polls < 10:
                _accept_dialogs(pg)
                time.sleep(0.5)
                status = pg.locator(".jp-Notebook-ExecutionIndicator").first
                idle = status.count() and status.get_attribute("data-status") == "idle"
                idle_polls = idle_polls + 1 if idle else 0
            if not ready.count():
                pg.screenshot(path=str(ARTIFACTS / "browser-run-all-failed.png"), full_page=True)
                errors = pg.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
                texts = [errors.nth(i).inner_text()[:1500] for i in range(min(errors.count(), 3))]
                raise AssertionError(f"the notebook did not finish running; errors: {texts}; "
                                     f"console: {console[-10:]}") from None
            yield pg
        finally:
            browser.close()


def _accept_dialogs(pg) -> bool:
    """Accept a JupyterLab dialog if one is open (e.g. "Select Kernel": the notebook's python3)."""
    dialog = pg.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count() and dialog.first.is_visible():
        dialog.first.click()
        time.sleep(0.5)
        return True
    return False


def _wait_kernel_idle(pg, timeout: float = STEP_S) -> None:
    """Wait for the kernel status in the toolbar to read idle, accepting dialogs on the way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _accept_dialogs(pg):
            continue
        status = pg.locator(".jp-Notebook-ExecutionIndicator").first
        if status.count() and (status.get_attribute("data-status") or "") == "idle":
            return
        time.sleep(0.5)
    raise AssertionError("the kernel did not become idle")


def _check(pg, run: int) -> dict:
    """Run the last cell (the check cell) and parse its JSON output (run number ``run``)."""
    cell = pg.locator(".jp-Notebook .jp-Cell").last
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    pg.keyboard.press("Control+Enter")  # run in place (Shift+Enter would add a cell below)
    out = cell.locator(".jp-OutputArea-output", has_text=f'GLCIC-CHECK {{"run": {run},')
    out.wait_for()
    text = out.inner_text()
    return json.loads(text[text.index("GLCIC-CHECK ") + len("GLCIC-CHECK "):].strip())


def _image_point(box: dict, width: int, height: int, fx: float, fy: float):
    """Screen point at fraction (fx, fy) of a canvas box, and the image pixel the canvas maps it to
    (the same formula as paint_canvas.js: pixel centres on whole numbers, rounded to 0.01)."""
    sx, sy = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    ix = round((sx - box["x"]) * width / box["width"] - 0.5, 2)
    iy = round((sy - box["y"]) * height / box["height"] - 0.5, 2)
    return (sx, sy), (ix, iy)


def test_painter_drag_then_complete(page):
    pg = page
    painter = pg.locator(".glcic-painter").first
    painter.scroll_into_view_if_needed()
    canvas = painter.locator("canvas.glcic-canvas-top")
    canvas.wait_for()
    pg.screenshot(path=str(ARTIFACTS / "browser-painter-before.png"))
    before = _check(pg, 2)  # run 1 was "Run All"; now: the strokes the notebook painted from code
    h, w = before["shape"]
    painter.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box and box["width"] > 50, f"the painter's canvas is not visible: {box}"
    assert abs(box["width"] / box["height"] - w / h) < 0.05, "the canvas does not keep the image's aspect ratio"

    # a horizontal drag across the upper half, where the notebook painted nothing
    (x0, y0), start = _image_point(box, w, h, 0.15, 0.12)
    (x1, y1), end = _image_point(box, w, h, 0.85, 0.12)
    results = painter.locator(".glcic-results img")
    old_src = results.first.get_attribute("src") if results.count() else None
    status = painter.locator(".glcic-mask-status")
    status_before = status.inner_text()
    main = painter.locator("canvas.glcic-canvas-main")
    mid = (int(round((start[0] + end[0]) / 2)), int(round(start[1])))
    pixel_js = "(c, [x, y]) => Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data)"
    rgba_before = main.evaluate(pixel_js, list(mid))
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    for i in range(1, 21):
        pg.mouse.move(x0 + (x1 - x0) * i / 20, y0 + (y1 - y0) * i / 20)
    pg.mouse.up()
    # Python recomputes the mask from the synced stroke and updates the status line
    pg.wait_for_function("([el, old]) => el.textContent !== old",
                         arg=[status.element_handle(), status_before], timeout=STEP_S * 1000)
    # the browser shows the hole where the mouse went: the canvas pixel there turned red
    rgba_after = main.evaluate(pixel_js, list(mid))
    redness = lambda c: c[0] - (c[1] + c[2]) / 2
    assert redness(rgba_after) > redness(rgba_before) + 30, (rgba_before, rgba_after)
    painter.locator(".glcic-complete").click()
    pg.wait_for_function("([box, old]) => { const im = box.querySelectorAll('img');"
                         " return im.length === 4 && im[0].getAttribute('src') !== old; }",
                         arg=[painter.locator(".glcic-results").element_handle(), old_src],
                         timeout=STEP_S * 1000)
    pg.screenshot(path=str(ARTIFACTS / "browser-painter-completed.png"))
    assert "Error" not in painter.locator(".glcic-message").inner_text()

    after = _check(pg, 3)
    assert after["n_strokes"] == before["n_strokes"] + 1, "the drag did not reach Python as one stroke"
    stroke = after["last"]
    assert stroke["kind"] == "brush" and not stroke["erase"] and len(stroke["points"]) >= 2
    (px0, py0), (px1, py1) = stroke["points"][0], stroke["points"][-1]
    assert abs(px0 - start[0]) <= 1.5 and abs(py0 - start[1]) <= 1.5, (stroke["points"][0], start)
    assert abs(px1 - end[0]) <= 1.5 and abs(py1 - end[1]) <= 1.5, (stroke["points"][-1], end)
    # the painted region is where the mouse went: the new hole pixels are exactly the stroke's
    # capsule, whose box is the dragged line grown by the brush radius, with no gap along the line
    r = int(round(stroke["radius"]))
    assert after["new_is_last"] is True and after["hole_pixels"] > before["hole_pixels"]
    top, left, bottom, right = after["last_box"]
    assert abs(top - (start[1] - r)) <= 2 and abs(bottom - (start[1] + r)) <= 2, (after["last_box"], start, r)
    assert abs(left - (start[0] - r)) <= 2 and abs(right - (end[0] + r)) <= 2, (after["last_box"], start, end, r)
    if round(py0) == round(py1):
        assert after["line_covered"] is True, "a gap along the dragged line"
    # ... and "Complete" used exactly that mask
    assert after["result_uses_mask"] is True
    assert after["message"].startswith("done with"), after["message"]


def test_explorer_click_chooses_the_pixel(page):
    pg = page
    explorer = pg.locator(".glcic-explorer").first
    explorer.scroll_into_view_if_needed()
    canvas = explorer.locator("canvas.glcic-canvas-top").first
    canvas.wait_for()
    numbers = explorer.locator(".glcic-explorer-numbers")
    before = numbers.inner_text()
    box = canvas.bounding_box()
    assert box and box["width"] > 50, f"the explorer's picture is not visible: {box}"
    size = canvas.evaluate("c => [c.width, c.height]")
    (sx, sy), (ix, iy) = _image_point(box, size[0], size[1], 0.30, 0.70)
    pg.mouse.click(sx, sy)
    want_y, want_x = round(iy) // 2, round(ix) // 2  # the notebook's explorer: scale 2, 256 grid, stride-1 output
    # the kernel answers the click: wait until the numbers describe the clicked pixel
    deadline, got, text = time.monotonic() + STEP_S, None, before
    while time.monotonic() < deadline:
        text = numbers.inner_text()
        m = re.search(r"output pixel \(y, x\) = \((\d+), (\d+)\)", text)
        got = (int(m.group(1)), int(m.group(2))) if m else None
        if got and abs(got[0] - want_y) <= 1 and abs(got[1] - want_x) <= 1 and "updated in" in text:
            break
        time.sleep(0.25)
    pg.screenshot(path=str(ARTIFACTS / "browser-explorer-clicked.png"))
    assert got and abs(got[0] - want_y) <= 1 and abs(got[1] - want_x) <= 1, \
        f"clicked output pixel ~{(want_y, want_x)}, the explorer shows {got}: {text[-300:]}"
    got_y, got_x = got
    assert text != before
    # the numbers are glcic_lib's for that pixel
    from glcic_lib import receptive_field as rf
    from glcic_lib.widgets import PRESETS

    assert str(rf.pixel_box(PRESETS["completion network"], got_y, got_x)) in text
