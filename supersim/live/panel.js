// The live panel around SupersimToyModel.Trainer (toy_model.js): controls, four canvas views
// (feature directions, W^T W, feature dimensionalities, loss curve) and a play loop that
// trains in short slices, one per animation frame, so the page stays responsive.
//
// SupersimLive.mount(element, config) builds the panel inside `element` and puts its
// JavaScript API on `element.liveToyModel` (documented in book/api.md). Colours come from
// `config.colors`, sampled from matplotlib by supersim.widgets so that the panel matches the
// book's static figures.
//
// The parts that need no page (the settings the panel can show, the steps/s meter and the
// play loop) are plain functions, which Node's tests require (tests/js/panel.test.js).
(function (root, factory) {
  var api = factory(root);
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.SupersimLive = api;
})(typeof self !== "undefined" ? self : this, function (root) {
  "use strict";
  var STEPS_PER_SLICE = 25, FRAME_BUDGET_MS = 10; // leaves most of a 60 Hz frame to the page
  var RATE_WINDOW_MS = 1000; // steps/s: steps done over the last second of wall-clock time
  var BLOCK = 10, MAX_POINTS = 400; // loss curve: mean loss per block of steps
  var SLIDER = 200; // positions of the log-scale sliders

  // What the panel can show, and so what `set` and the controls accept (supersim.widgets.
  // live_toy_model checks the same ranges): the directions view draws hidden dimensions 1
  // and 2, so m >= 2; the density slider is log-scaled, so density > 0.
  var RANGES = {
    n: [2, 8], m: [2, 3], density: [0.01, 1], decay: [0.7, 1], lr: [1e-4, 3e-2],
    weightDecay: [0, 1], batch: [1, 65536], seed: [0, 4294967295],
  };
  var INTEGERS = { n: true, m: true, batch: true, seed: true };

  // Throw a RangeError naming the first setting the panel cannot show; return the changes.
  function checkChanges(changes) {
    if (changes === null || typeof changes !== "object") {
      throw new RangeError("changes must be an object such as {density: 0.3}, got " + changes);
    }
    Object.keys(changes).forEach(function (key) {
      var lim = RANGES[key], v = changes[key];
      if (!lim) {
        throw new RangeError("unknown setting " + JSON.stringify(key) + ": the panel takes " +
          Object.keys(RANGES).join(", "));
      }
      var ok = typeof v === "number" && v >= lim[0] && v <= lim[1] &&
        (INTEGERS[key] ? Number.isInteger(v) : isFinite(v));
      if (!ok) {
        throw new RangeError(key + " must be " + (INTEGERS[key] ? "an integer" : "a number") +
          " in [" + lim[0] + ", " + lim[1] + "], got " + v);
      }
    });
    return changes;
  }

  // Steps per second of wall-clock time: the steps done between the oldest sample of the last
  // RATE_WINDOW_MS and now, over the time between them, so that drawing and the wait for the
  // next frame count as well as training. `sample(t, steps)` returns the rate (0 until time
  // has passed); a step count that goes down (a reset) or `restart()` starts a new window.
  function RateMeter(windowMs) {
    this.windowMs = windowMs || RATE_WINDOW_MS;
    this.restart();
  }

  RateMeter.prototype.restart = function () { this.samples = []; };

  RateMeter.prototype.sample = function (t, steps) {
    var s = this.samples;
    if (s.length && steps < s[s.length - 1][1]) s.length = 0;
    s.push([t, steps]);
    while (s.length > 2 && t - s[1][0] >= this.windowMs) s.shift(); // keep a full window
    var dt = t - s[0][0];
    return dt > 0 ? 1000 * (steps - s[0][1]) / dt : 0;
  };

  // The play loop: once per animation frame, measure the rate, train slices of
  // STEPS_PER_SLICE steps for about FRAME_BUDGET_MS, then draw. `hooks` gives it the world:
  // now() in ms, schedule(fn) for the next frame, train(k), steps(), draw(), visible().
  function Player(hooks) {
    this.hooks = hooks;
    this.playing = false;
    this.rate = 0;
    this.meter = new RateMeter();
    var self = this;
    this._frame = function () { self.frame(); };
  }

  Player.prototype.play = function () {
    if (this.playing) return;
    this.playing = true; this.rate = 0; this.meter.restart();
    this.hooks.schedule(this._frame);
  };

  Player.prototype.pause = function () { this.playing = false; this.rate = 0; };

  Player.prototype.frame = function () {
    var h = this.hooks;
    if (!this.playing) return;
    if (h.visible()) {
      var t0 = h.now();
      this.rate = this.meter.sample(t0, h.steps());
      do h.train(STEPS_PER_SLICE); while (h.now() - t0 < FRAME_BUDGET_MS);
      h.draw();
    } else {
      this.meter.restart(); // a panel out of sight does not train: that time is not counted
      this.rate = 0;
    }
    h.schedule(this._frame);
  };

  function el(tag, attrs, parent) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "style") node.style.cssText = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    if (parent) parent.appendChild(node);
    return node;
  }

  function fmt(v) { return String(+v.toPrecision(3)); } // 0.001, 0.0316, 1e-5

  function lutColor(lut, t) { // t in [0, 1] -> the nearest colour of a sampled colormap
    t = Math.min(1, Math.max(0, t));
    return lut[Math.round(t * (lut.length - 1))];
  }

  // Log-scale slider positions (0..SLIDER) <-> values
  function toLog(v, lo, hi) { return Math.round(SLIDER * Math.log(v / lo) / Math.log(hi / lo)); }
  function fromLog(s, lo, hi) { return +(lo * Math.pow(hi / lo, s / SLIDER)).toPrecision(3); }

  function canvas(parent, w, h, label) {
    // plain divs: a theme's figure and caption styles must not reach the panel
    var box = el("div", { style: "margin:0 5px 5px 0;padding:0" }, parent);
    var c = el("canvas", { "aria-label": label, role: "img", style: "display:block" }, box);
    var dpr = root.devicePixelRatio || 1;
    c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    c.style.width = w + "px"; c.style.height = h + "px";
    c.style.background = "#fff";
    el("div", { text: label, style: "font-size:11px;line-height:1.3;color:#555;text-align:center;" +
      "max-width:" + w + "px" }, box);
    var ctx = c.getContext("2d");
    ctx.scale(dpr, dpr);
    return { canvas: c, ctx: ctx, w: w, h: h };
  }

  function mount(rootEl, config) {
    var colors = config.colors;
    var trainer = new root.SupersimToyModel.Trainer(checkChanges(Object.assign({}, config.options)));
    var state = { visible: true, blockSum: 0, blockLeft: BLOCK, block: BLOCK, curve: [], marks: [], frames: 0 };
    rootEl.innerHTML = "";
    rootEl.style.cssText += ";font:12px/1.4 sans-serif;color:#222;border:1px solid #ddd;" +
      "border-radius:4px;padding:8px;margin:8px 0;max-width:760px;background:#fcfcfc";
    if (config.title) el("div", { text: config.title, style: "font-weight:bold;margin-bottom:4px" }, rootEl);

    // ---- controls ---------------------------------------------------------------------
    var controls = el("div", { style: "display:flex;flex-wrap:wrap;gap:2px 14px" }, rootEl);
    var inputs = {}, values = {};
    function slider(key, label, min, max, step) {
      var wrap = el("label", { style: "white-space:nowrap" }, controls);
      wrap.appendChild(document.createTextNode(label + " "));
      var input = el("input", { type: "range", min: min, max: max, step: step, "data-control": key,
        style: "width:110px;vertical-align:middle" }, wrap);
      values[key] = el("span", { style: "display:inline-block;min-width:4.2em;margin-left:3px;" +
        "font-variant-numeric:tabular-nums" }, wrap);
      inputs[key] = input;
      return input;
    }
    // every control's range lies inside RANGES, so no position of one is a setting the panel cannot show
    slider("n", "features n", RANGES.n[0], RANGES.n[1], 1);
    var mWrap = el("label", { style: "white-space:nowrap" }, controls);
    mWrap.appendChild(document.createTextNode("hidden m "));
    inputs.m = el("select", { "data-control": "m" }, mWrap);
    for (var m = RANGES.m[0]; m <= RANGES.m[1]; m++) el("option", { value: m, text: String(m) }, inputs.m);
    slider("density", "density 1 - S", 0, SLIDER, 1); // log scale, 1 (left) to RANGES.density[0]
    slider("decay", "importance decay", RANGES.decay[0], RANGES.decay[1], 0.01);
    slider("lr", "learning rate", 0, SLIDER, 1); // log scale over RANGES.lr
    var seedWrap = el("label", { style: "white-space:nowrap" }, controls);
    seedWrap.appendChild(document.createTextNode("seed "));
    inputs.seed = el("input", { type: "number", min: RANGES.seed[0], max: RANGES.seed[1], step: 1,
      "data-control": "seed", style: "width:4.5em" }, seedWrap);

    var buttons = el("div", { style: "margin:6px 0;display:flex;flex-wrap:wrap;gap:6px;align-items:center" }, rootEl);
    // one width for "play" and "pause", so that the buttons after it never move
    var play = el("button", { type: "button", "data-action": "play", text: "\u25b6 play",
      style: "width:6.5em" }, buttons);
    var stepBtn = el("button", { type: "button", "data-action": "step", text: "+100 steps" }, buttons);
    var reset = el("button", { type: "button", "data-action": "reset", text: "reset" }, buttons);
    var fast = el("button", { type: "button", "data-action": "fast",
      text: "faster preset: lr " + fmt(config.fastLr) }, buttons);
    var paper = el("button", { type: "button", "data-action": "paper",
      text: "paper's lr " + fmt(config.options.lr) }, buttons);
    // The status line has a fixed layout: one line of reserved height that never wraps, and
    // numbers in fixed-width fields of tabular digits, so nothing below it moves while it counts.
    var status = el("div", { "data-role": "status", style: "height:1.4em;line-height:1.4em;" +
      "white-space:nowrap;overflow:hidden;text-overflow:ellipsis;color:#444;" +
      "font-variant-numeric:tabular-nums;margin:0 0 4px" }, rootEl);
    function field(label, width) {
      status.appendChild(document.createTextNode(label));
      return el("span", { style: "display:inline-block;min-width:" + width }, status);
    }
    var fields = { step: field("step ", "8ch"), loss: field(" \u00b7 loss ", "8ch"), rate: field(" \u00b7 ", "14ch") };
    fields.rate.setAttribute("data-role", "rate");

    var views = el("div", { style: "display:flex;flex-wrap:wrap" }, rootEl);
    var dirs = canvas(views, 150, 150, "directions W_i (bright: important)");
    var gram = canvas(views, 150, 150, "W\u1d40W (red +, blue \u2212)");
    var dims = canvas(views, 150, 150, "dimensionality D_i");
    var curve = canvas(views, 180, 150, "loss (log scale) by step");

    function showControls() {
      var o = trainer.options;
      inputs.n.value = o.n; values.n.textContent = o.n;
      inputs.m.value = String(o.m);
      inputs.density.value = toLog(o.density, 1, RANGES.density[0]); values.density.textContent = fmt(o.density);
      inputs.decay.value = o.decay; values.decay.textContent = fmt(o.decay);
      inputs.lr.value = toLog(o.lr, RANGES.lr[0], RANGES.lr[1]); values.lr.textContent = fmt(o.lr);
      inputs.seed.value = o.seed;
    }

    function importanceColors() {
      var o = trainer.options, out = [];
      var lo = Math.pow(o.decay, o.n - 1), span = 1 - lo;
      for (var i = 0; i < o.n; i++) {
        var level = span > 0 ? (Math.pow(o.decay, i) - lo) / span : 1; // as supersim.plot
        out.push(lutColor(colors.importance, level));
      }
      return out;
    }

    // ---- training -----------------------------------------------------------------------
    function advance(k) { // k steps, in blocks of `state.block` for the loss curve
      var done = 0, total = 0;
      while (done < k) {
        var take = Math.min(k - done, state.blockLeft);
        var l = trainer.train(take);
        total += l * take; state.blockSum += l * take; state.blockLeft -= take; done += take;
        if (state.blockLeft === 0) {
          state.curve.push([trainer.steps, state.blockSum / state.block]);
          state.blockSum = 0; state.blockLeft = state.block;
          if (state.curve.length > MAX_POINTS) { // halve the resolution, keep the whole run
            var merged = [];
            for (var j = 0; j + 1 < state.curve.length; j += 2) {
              merged.push([state.curve[j + 1][0], (state.curve[j][1] + state.curve[j + 1][1]) / 2]);
            }
            state.curve = merged; state.block *= 2; state.blockLeft = state.block;
          }
        }
      }
      return k > 0 ? total / k : NaN;
    }

    function change(changes) {
      checkChanges(changes); // before anything changes: a rejected call leaves the panel as it was
      var before = trainer.steps, seedChanged = "seed" in changes && changes.seed !== trainer.options.seed;
      trainer.set(changes);
      if (seedChanged) clearCurve();
      else if (before > 0) state.marks.push(before);
      showControls(); draw();
    }

    function clearCurve() {
      state.curve = []; state.marks = []; state.block = BLOCK; state.blockLeft = BLOCK; state.blockSum = 0;
    }

    var player = new Player({
      now: function () { return root.performance.now(); },
      schedule: function (fn) { root.requestAnimationFrame(fn); },
      train: advance,
      steps: function () { return trainer.steps; },
      draw: draw,
      visible: function () { return state.visible; },
    });

    function setPlaying(on) {
      if (on === player.playing) return;
      if (on) player.play(); else player.pause();
      play.textContent = on ? "\u275a\u275a pause" : "\u25b6 play";
      draw();
    }

    // ---- drawing ------------------------------------------------------------------------
    function drawDirections(cols) {
      var c = dirs.ctx, w = dirs.w, h = dirs.h, o = trainer.options, W = trainer.W;
      var lim = 1.5, sx = w / (2 * lim);
      c.clearRect(0, 0, w, h);
      c.strokeStyle = "#d9d9d9"; c.lineWidth = 0.6; // the axes, grey 0.85 as in supersim.plot
      c.beginPath(); c.moveTo(0, h / 2); c.lineTo(w, h / 2); c.moveTo(w / 2, 0); c.lineTo(w / 2, h); c.stroke();
      for (var i = 0; i < o.n; i++) { // a projection onto hidden dimensions 1 and 2 when m = 3
        var x = w / 2 + W[i] * sx, y = h / 2 - W[o.n + i] * sx;
        c.strokeStyle = cols[i]; c.fillStyle = cols[i]; c.lineWidth = 1.5;
        c.beginPath(); c.moveTo(w / 2, h / 2); c.lineTo(x, y); c.stroke();
        c.beginPath(); c.arc(x, y, 3, 0, 2 * Math.PI); c.fill();
      }
      if (o.m > 2) { c.fillStyle = "#777"; c.font = "10px sans-serif"; c.fillText("projection on h1, h2", 4, h - 5); }
    }

    function drawGram() {
      var c = gram.ctx, o = trainer.options, n = o.n, W = trainer.W;
      var cell = Math.floor(Math.min(gram.w, gram.h) / n), off = (gram.w - cell * n) / 2;
      c.clearRect(0, 0, gram.w, gram.h);
      for (var i = 0; i < n; i++) {
        for (var j = 0; j < n; j++) {
          var v = 0;
          for (var k = 0; k < o.m; k++) v += W[k * n + i] * W[k * n + j];
          c.fillStyle = lutColor(colors.gram, (v + 1) / 2); // RdBu_r from -1 to 1, as supersim.plot.wtw
          c.fillRect(off + j * cell, i * cell, cell, cell);
        }
      }
    }

    function drawDims(cols) {
      var c = dims.ctx, w = dims.w, h = dims.h, n = trainer.options.n;
      var D = trainer.dimensionality(), top = 1.1, pad = 22, base = h - 6;
      var y = function (v) { return base - (base - 6) * v / top; };
      c.clearRect(0, 0, w, h);
      var bw = (w - pad - 4) / n;
      for (var i = 0; i < n; i++) {
        c.fillStyle = cols[i];
        c.fillRect(4 + i * bw + bw * 0.1, y(D[i]), bw * 0.8, base - y(D[i]));
      }
      c.font = "10px sans-serif"; c.fillStyle = "#555"; c.strokeStyle = "#888"; c.lineWidth = 0.8;
      c.setLineDash([2, 3]);
      [[1, "1"], [0.5, "1/2"], [0.4, "2/5"]].forEach(function (r) {
        c.beginPath(); c.moveTo(4, y(r[0])); c.lineTo(w - pad, y(r[0])); c.stroke();
        c.fillText(r[1], w - pad + 2, y(r[0]) + (r[0] === 0.4 ? 8 : 3));
      });
      c.setLineDash([]);
      c.strokeStyle = "#999"; c.beginPath(); c.moveTo(4, base); c.lineTo(w - pad, base); c.stroke();
    }

    function drawCurve() {
      var c = curve.ctx, w = curve.w, h = curve.h, pts = state.curve;
      var left = 34, bottom = h - 16;
      c.clearRect(0, 0, w, h);
      c.strokeStyle = "#999"; c.lineWidth = 0.8;
      c.beginPath(); c.moveTo(left, 4); c.lineTo(left, bottom); c.lineTo(w - 4, bottom); c.stroke();
      c.fillStyle = "#555"; c.font = "10px sans-serif";
      c.fillText(String(trainer.steps), w - 4 - c.measureText(String(trainer.steps)).width, h - 4);
      c.fillText("0", left, h - 4);
      if (pts.length < 2) return;
      var lo = Infinity, hi = -Infinity;
      pts.forEach(function (p) { var v = Math.log10(Math.max(p[1], 1e-12)); lo = Math.min(lo, v); hi = Math.max(hi, v); });
      lo = Math.floor(lo * 2) / 2; hi = Math.max(lo + 0.5, Math.ceil(hi * 2) / 2);
      var xs = function (s) { return left + (w - 4 - left) * s / Math.max(trainer.steps, 1); };
      var ys = function (v) { return bottom - (bottom - 4) * (v - lo) / (hi - lo); };
      for (var d = Math.ceil(lo); d <= hi; d++) c.fillText("1e" + d, 2, ys(d) + 3);
      c.strokeStyle = "#bbb"; c.setLineDash([2, 3]); // where a control changed
      state.marks.forEach(function (s) { c.beginPath(); c.moveTo(xs(s), 4); c.lineTo(xs(s), bottom); c.stroke(); });
      c.setLineDash([]);
      c.strokeStyle = colors.line; c.lineWidth = 1.2; c.beginPath();
      pts.forEach(function (p, k) {
        var px = xs(p[0]), py = ys(Math.log10(Math.max(p[1], 1e-12)));
        if (k) c.lineTo(px, py); else c.moveTo(px, py);
      });
      c.stroke();
    }

    function draw() {
      var cols = importanceColors();
      drawDirections(cols); drawGram(); drawDims(cols); drawCurve();
      var loss = trainer.lastLoss;
      fields.step.textContent = trainer.steps.toLocaleString("en-US");
      fields.loss.textContent = isFinite(loss) ? loss.toPrecision(3) : "\u2013";
      fields.rate.textContent = (player.playing && player.rate > 0 ?
        Math.round(player.rate).toLocaleString("en-US") : "\u2013") + " steps/s";
      state.frames += 1;
    }

    // ---- wiring -------------------------------------------------------------------------
    inputs.n.addEventListener("input", function () { change({ n: +inputs.n.value }); });
    inputs.m.addEventListener("change", function () { change({ m: +inputs.m.value }); });
    inputs.density.addEventListener("input", function () {
      change({ density: fromLog(+inputs.density.value, 1, RANGES.density[0]) });
    });
    inputs.decay.addEventListener("input", function () { change({ decay: +inputs.decay.value }); });
    inputs.lr.addEventListener("input", function () { change({ lr: fromLog(+inputs.lr.value, RANGES.lr[0], RANGES.lr[1]) }); });
    inputs.seed.addEventListener("change", function () {
      var s = Math.floor(+inputs.seed.value);
      if (s >= RANGES.seed[0] && s <= RANGES.seed[1]) change({ seed: s }); else showControls();
    });
    play.addEventListener("click", function () { setPlaying(!player.playing); });
    stepBtn.addEventListener("click", function () { advance(100); draw(); });
    function restart() { trainer.reset(); clearCurve(); player.meter.restart(); draw(); }
    reset.addEventListener("click", restart);
    fast.addEventListener("click", function () { change({ lr: config.fastLr }); });
    paper.addEventListener("click", function () { change({ lr: config.options.lr }); });
    if (root.IntersectionObserver) { // no training for a panel scrolled out of sight
      new root.IntersectionObserver(function (entries) {
        state.visible = entries[entries.length - 1].isIntersecting;
      }).observe(rootEl);
    }

    rootEl.liveToyModel = {
      /** Change settings (n, m, density, decay, lr, seed, batch, weightDecay) and continue;
       *  a setting outside RANGES throws a RangeError and changes nothing. */
      set: function (changes) { change(changes); return Object.assign({}, trainer.options); },
      options: function () { return Object.assign({}, trainer.options); },
      /** Train k steps now (synchronously), redraw, and return their mean loss. */
      steps: function (k) { var l = advance(k); draw(); return l; },
      reset: restart,
      play: function () { setPlaying(true); },
      pause: function () { setPlaying(false); },
      isPlaying: function () { return player.playing; },
      /** The steps/s shown: steps per second of wall-clock time over the last second of play. */
      rate: function () { return player.playing ? player.rate : 0; },
      weights: function () { return trainer.weights(); },
      bias: function () { return Array.from(trainer.b); },
      loss: function () { return trainer.lastLoss; },
      stepCount: function () { return trainer.steps; },
      dimensionality: function () { return trainer.dimensionality(); },
      lossCurve: function () { return state.curve.map(function (p) { return p.slice(); }); },
      frames: function () { return state.frames; },
    };
    showControls(); draw();
    return rootEl.liveToyModel;
  }

  return {
    mount: mount, RANGES: RANGES, checkChanges: checkChanges, RateMeter: RateMeter, Player: Player,
    STEPS_PER_SLICE: STEPS_PER_SLICE, FRAME_BUDGET_MS: FRAME_BUDGET_MS, RATE_WINDOW_MS: RATE_WINDOW_MS,
  };
});
