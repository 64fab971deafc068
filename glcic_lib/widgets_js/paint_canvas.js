// The browser half of glcic_lib's painter and explorer: an HTML canvas that shows an image,
// lets the mouse (or a finger / pen: pointer events) draw strokes, and sends each finished
// stroke to Python as JSON.  Python (glcic_lib/painting.py) turns the strokes into the mask;
// this file only *shows* them, with the same conventions:
//   * coordinates are image pixels, pixel centres on whole numbers (x = column, y = row);
//   * brush = discs of `radius` along the polyline, rect/ellipse = corner boxes, erase,
//     clear; the list of strokes is the state (undo = Python drops the last one).
// In "pick" mode a click reports one pixel in `picked` (the receptive-field explorer).
// Loaded by anywidget, so the same file works in JupyterLab, Notebook 7, VS Code and Colab.

const HOLE_COLOR = "rgba(255, 40, 40, 1)";

function loadImage(src) {
  return new Promise((resolve) => {
    if (!src) return resolve(null);
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = src;
  });
}

function drawStroke(ctx, s) {
  if (s.kind === "clear") {
    ctx.clearRect(0, 0, ctx.canvas.width, ctx.canvas.height);
    return;
  }
  ctx.globalCompositeOperation = s.erase ? "destination-out" : "source-over";
  ctx.fillStyle = HOLE_COLOR;
  ctx.strokeStyle = HOLE_COLOR;
  if (s.kind === "brush") {
    const r = Math.round(s.radius) + 0.5;
    const pts = s.points.map(([x, y]) => [Math.round(x) + 0.5, Math.round(y) + 0.5]);
    for (const [x, y] of pts) {
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
    }
    if (pts.length > 1) {
      ctx.lineWidth = 2 * r;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(pts[0][0], pts[0][1]);
      for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
  } else {
    const [x0, y0, x1, y1] = s.box.map(Math.round);
    const l = Math.min(x0, x1), t = Math.min(y0, y1);
    const w = Math.abs(x1 - x0) + 1, h = Math.abs(y1 - y0) + 1;
    ctx.beginPath();
    if (s.kind === "rect") ctx.rect(l, t, w, h);
    else ctx.ellipse(l + w / 2, t + h / 2, w / 2, h / 2, 0, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.globalCompositeOperation = "source-over";
}

function render({ model, el }) {
  el.classList.add("glcic-canvas");
  const stack = document.createElement("div");
  stack.className = "glcic-canvas-stack";
  const base = document.createElement("canvas"); // image + holes
  base.className = "glcic-canvas-main";
  const top = document.createElement("canvas"); // stroke in progress, brush outline
  top.className = "glcic-canvas-top";
  const holes = document.createElement("canvas"); // offscreen: the mask alone
  stack.append(base, top);
  el.append(stack);

  let bg = null, baseMask = null, current = null;

  function size() {
    const w = model.get("img_width"), h = model.get("img_height");
    for (const c of [base, top, holes]) {
      if (c.width !== w) c.width = w;
      if (c.height !== h) c.height = h;
    }
    stack.style.width = model.get("display_width") + "px";
  }

  function redraw() {
    size();
    const hctx = holes.getContext("2d");
    hctx.clearRect(0, 0, holes.width, holes.height);
    if (baseMask) hctx.drawImage(baseMask, 0, 0, holes.width, holes.height);
    for (const s of model.get("strokes")) drawStroke(hctx, s);
    const ctx = base.getContext("2d");
    ctx.clearRect(0, 0, base.width, base.height);
    if (bg) ctx.drawImage(bg, 0, 0, base.width, base.height);
    ctx.globalAlpha = model.get("hole_alpha");
    ctx.drawImage(holes, 0, 0);
    ctx.globalAlpha = 1;
  }

  function drawTop(pos) {
    const ctx = top.getContext("2d");
    ctx.clearRect(0, 0, top.width, top.height);
    if (current) {
      ctx.globalAlpha = 0.6;
      drawStroke(ctx, current);
      ctx.globalAlpha = 1;
    }
    const tool = model.get("tool");
    if (pos && (tool === "brush" || tool === "eraser")) {
      ctx.strokeStyle = tool === "eraser" ? "#00b0ff" : "#ffffff";
      ctx.lineWidth = Math.max(1, base.width / base.getBoundingClientRect().width);
      ctx.beginPath();
      ctx.arc(pos[0] + 0.5, pos[1] + 0.5, Math.round(model.get("radius")) + 0.5, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }

  async function reload() {
    bg = await loadImage(model.get("src"));
    baseMask = await loadImage(model.get("base_src"));
    redraw();
  }

  // canvas pixel -> image pixel (pixel centres on whole numbers)
  function toImage(ev) {
    const r = base.getBoundingClientRect();
    const x = ((ev.clientX - r.left) * base.width) / r.width - 0.5;
    const y = ((ev.clientY - r.top) * base.height) / r.height - 0.5;
    return [Math.round(x * 100) / 100, Math.round(y * 100) / 100];
  }

  function commit(stroke) {
    model.set("strokes", [...model.get("strokes"), stroke]);
    model.save_changes();
  }

  top.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    const tool = model.get("tool");
    const p = toImage(ev);
    if (tool === "pick") {
      model.set("picked", [Math.round(p[0]), Math.round(p[1])]);
      model.save_changes();
      return;
    }
    if (tool === "none") return;
    ev.preventDefault();
    top.setPointerCapture(ev.pointerId);
    if (tool === "brush" || tool === "eraser") {
      current = { kind: "brush", points: [p], radius: model.get("radius"), erase: tool === "eraser" };
    } else if (tool === "rect" || tool === "ellipse") {
      current = { kind: tool, box: [p[0], p[1], p[0], p[1]], erase: model.get("erase_shapes") };
    }
    drawTop(p);
  });

  top.addEventListener("pointermove", (ev) => {
    const p = toImage(ev);
    if (current && current.kind === "brush") {
      const last = current.points[current.points.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= 1) current.points.push(p);
    } else if (current) {
      current.box = [current.box[0], current.box[1], p[0], p[1]];
    }
    drawTop(p);
  });

  function finish(ev) {
    if (!current) return;
    const s = current;
    current = null;
    try { top.releasePointerCapture(ev.pointerId); } catch (e) { /* already released */ }
    commit(s);
    drawTop(null);
  }
  top.addEventListener("pointerup", finish);
  top.addEventListener("pointercancel", finish);
  top.addEventListener("pointerleave", () => { if (!current) drawTop(null); });

  model.on("change:strokes", redraw);
  model.on("change:src", reload);
  model.on("change:base_src", reload);
  model.on("change:img_width", redraw);
  model.on("change:img_height", redraw);
  model.on("change:display_width", redraw);
  model.on("change:hole_alpha", redraw);
  model.on("change:tool", () => {
    top.style.cursor = model.get("tool") === "none" ? "default" : "crosshair";
  });
  top.style.cursor = model.get("tool") === "none" ? "default" : "crosshair";
  reload();
  return () => {};
}

export default { render };
