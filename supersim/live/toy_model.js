// The ReLU toy model x' = ReLU(W^T W x + b) of Elhage et al. (2022), trained in plain
// JavaScript the way supersim.train trains it (supersim/training.py): fresh batches of sparse
// features (one uniform u per entry: active when u < p, value u / p), the importance-weighted
// squared error averaged over batch and features, Xavier-normal initial weights, and AdamW
// with torch's semantics (bias correction, decoupled weight decay on every parameter).
//
// No library and no build step: typed arrays and gradients written out by hand. The same file
// runs in a browser page (it defines `SupersimToyModel`) and in Node (`require` it), where the
// tests check it against finite differences, torch's AdamW and supersim.train.
//
// Layouts: W is (m, n) row-major, W[k * n + i] = hidden dimension k of feature i's direction;
// a batch x is (B, n) row-major. B = batch, n = features, m = hidden dimensions.
(function (root, factory) {
  var api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.SupersimToyModel = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  var BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8; // torch's AdamW defaults, as in supersim.train

  function rotl(x, k) { return (x << k) | (x >>> (32 - k)); }

  // A seeded xoshiro128** stream. `stream` separates independent streams of one seed (the
  // initial weights and the data), as supersim.train keeps its data stream apart from the
  // model's initialisation.
  function Rng(seed, stream) {
    if (!(Number.isInteger(seed) && seed >= 0 && seed < 4294967296)) {
      throw new RangeError("seed must be an integer in [0, 2^32), got " + seed);
    }
    // splitmix32 spreads (seed, stream) over the 128-bit state, never all zero
    var a = (seed ^ Math.imul((stream | 0) + 1, 0x85ebca6b)) | 0;
    var s = new Uint32Array(4);
    for (var j = 0; j < 4; j++) {
      a = (a + 0x9e3779b9) | 0;
      var t = a ^ (a >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      s[j] = (t ^ (t >>> 15)) >>> 0;
    }
    if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
    this.s = s;
  }

  Rng.prototype.next = function () {
    var s = this.s;
    var result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    var t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 11);
    return result;
  };

  // U[0, 1) with 24 random bits, like torch.rand in float32
  Rng.prototype.uniform = function () { return (this.next() >>> 8) * 5.9604644775390625e-8; };

  // N(0, 1) by Box-Muller; 1 - u lies in (0, 1], so the log is finite
  Rng.prototype.normal = function () {
    var u = 1 - this.uniform(), v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };

  // Fill x (B, n) with sparse features: entry (r, i) is active when u < p[i], and then
  // u / p[i] is itself uniform on [0, 1). The generator is inlined: it is most of a step.
  Rng.prototype.sparseBatch = function (p, B, x) {
    var n = p.length, s = this.s;
    var s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
    var inv = new Float64Array(n);
    for (var i = 0; i < n; i++) inv[i] = p[i] > 0 ? 1 / p[i] : 0;
    for (var e = 0, r = 0; r < B; r++) {
      for (i = 0; i < n; i++, e++) {
        var out = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
        var t = s1 << 9;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11);
        var u = (out >>> 8) * 5.9604644775390625e-8;
        x[e] = u < p[i] ? u * inv[i] : 0;
      }
    }
    s[0] = s0; s[1] = s1; s[2] = s2; s[3] = s3;
    return x;
  };

  // Xavier-normal entries for an (m, n) W: std sqrt(2 / (fan_in + fan_out)), as ToyModel
  function xavier(rng, m, n) {
    var W = new Float64Array(m * n), std = Math.sqrt(2 / (m + n));
    for (var e = 0; e < W.length; e++) W[e] = rng.normal() * std;
    return W;
  }

  // Loss L = mean over batch and features of imp[i] (x'_i - x_i)^2, and its gradients,
  // written into gW (m, n) and gb (n). h = W x; pre = W^T h + b; x' = ReLU(pre).
  // W appears twice (encoder and decoder), so dL/dW = h d_pre^T + d_h x^T.
  // Sparse inputs make this cheap: each row touches only its active features, and every row
  // with none active (most of them when features are sparse) has h = 0 and x' = ReLU(b), so
  // those rows are counted and added once.
  function lossAndGrads(W, b, m, n, x, B, imp, gW, gb) {
    var h = new Float64Array(m), dpre = new Float64Array(n);
    var act = new Int32Array(n), val = new Float64Array(n);
    var scale = 2 / (B * n), loss = 0, empty = 0, i, j, k;
    gW.fill(0); gb.fill(0);
    for (var r = 0, base = 0; r < B; r++, base += n) {
      var na = 0;
      for (i = 0; i < n; i++) { var xi = x[base + i]; if (xi !== 0) { act[na] = i; val[na++] = xi; } }
      if (na === 0) { empty++; continue; }
      for (k = 0; k < m; k++) { // h = W x, over the active features only
        var acc = 0, row = k * n;
        for (j = 0; j < na; j++) acc += W[row + act[j]] * val[j];
        h[k] = acc;
      }
      for (i = 0; i < n; i++) {
        var z = b[i];
        for (k = 0; k < m; k++) z += W[k * n + i] * h[k];
        var err = (z > 0 ? z : 0) - x[base + i];
        var we = imp[i] * err;
        loss += we * err;
        dpre[i] = z > 0 ? we * scale : 0; // the ReLU passes gradient only where pre > 0
        gb[i] += dpre[i];
      }
      for (k = 0; k < m; k++) {
        var row2 = k * n, hk = h[k], d = 0;
        for (i = 0; i < n; i++) { d += W[row2 + i] * dpre[i]; gW[row2 + i] += hk * dpre[i]; }
        for (j = 0; j < na; j++) gW[row2 + act[j]] += d * val[j]; // d_h x^T, active entries
      }
    }
    for (i = 0; i < n && empty > 0; i++) { // the rows with no active feature, all at once
      if (b[i] > 0) {
        loss += empty * imp[i] * b[i] * b[i];
        gb[i] += empty * imp[i] * b[i] * scale;
      }
    }
    return loss / (B * n);
  }

  // Loss only, e.g. to compare restarts or check gradients by finite differences
  function loss(W, b, m, n, x, B, imp) {
    return lossAndGrads(W, b, m, n, x, B, imp, new Float64Array(m * n), new Float64Array(n));
  }

  // One AdamW update in place, step t (1-based), as torch.optim.AdamW computes it:
  // decay the parameter first (decoupled), then the bias-corrected Adam step.
  function adamw(param, grad, expAvg, expAvgSq, t, lr, weightDecay) {
    var c1 = 1 - Math.pow(BETA1, t), c2 = Math.sqrt(1 - Math.pow(BETA2, t));
    var stepSize = lr / c1, keep = 1 - lr * weightDecay;
    for (var e = 0; e < param.length; e++) {
      var g = grad[e];
      var ma = (expAvg[e] += (g - expAvg[e]) * (1 - BETA1)); // torch's lerp
      var va = (expAvgSq[e] = expAvgSq[e] * BETA2 + (1 - BETA2) * g * g);
      param[e] = param[e] * keep - stepSize * ma / (Math.sqrt(va) / c2 + EPS);
    }
  }

  // D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2 (supersim.metrics.feature_dimensionality):
  // 1 for a dimension of its own, 1/2 for an antipodal pair, 2/5 for a pentagon, 0 unlearned.
  function dimensionality(W, m, n) {
    var D = new Float64Array(n);
    for (var i = 0; i < n; i++) {
      var ni = 0, k;
      for (k = 0; k < m; k++) ni += W[k * n + i] * W[k * n + i];
      if (!(ni > 1e-12)) continue;
      var denom = 0;
      for (var j = 0; j < n; j++) {
        var dot = 0;
        for (k = 0; k < m; k++) dot += W[k * n + i] * W[k * n + j];
        denom += dot * dot / ni;
      }
      D[i] = ni / denom;
    }
    return D;
  }

  var DEFAULTS = {
    n: 5, m: 2, density: 0.1, decay: 0.9, lr: 1e-3, weightDecay: 0.01, batch: 1024, seed: 0,
  };
  var LIMITS = { n: [1, 64], m: [1, 16], batch: [1, 65536] };

  function checkOptions(o) {
    ["n", "m", "batch"].forEach(function (key) {
      var v = o[key], lim = LIMITS[key];
      if (!(Number.isInteger(v) && v >= lim[0] && v <= lim[1])) {
        throw new RangeError(key + " must be an integer in [" + lim + "], got " + v);
      }
    });
    if (!(o.density >= 0 && o.density <= 1)) throw new RangeError("density must lie in [0, 1], got " + o.density);
    if (!(o.decay > 0 && o.decay <= 1)) throw new RangeError("decay must lie in (0, 1], got " + o.decay);
    if (!(o.lr >= 0 && isFinite(o.lr))) throw new RangeError("lr must be finite and >= 0, got " + o.lr);
    if (!(o.weightDecay >= 0 && isFinite(o.weightDecay))) {
      throw new RangeError("weightDecay must be finite and >= 0, got " + o.weightDecay);
    }
    new Rng(o.seed, 0); // checks the seed
  }

  // A trainer holding one model, its AdamW state and its two random streams. `set` changes
  // settings and continues from the current weights (features or hidden dimensions that
  // appear get fresh Xavier weights and zero optimiser state); `reset` starts over from the seed.
  function Trainer(options) {
    var o = Object.assign({}, DEFAULTS, options || {});
    checkOptions(o);
    this.options = o;
    this.reset();
  }

  Trainer.prototype.reset = function () {
    var o = this.options;
    this.initRng = new Rng(o.seed, 0);
    this.dataRng = new Rng(o.seed, 1);
    this.W = xavier(this.initRng, o.m, o.n);
    this.b = new Float64Array(o.n);
    this.mW = null; // fresh AdamW state
    this._buffers();
    this.t = 0; // AdamW's step count
    this.steps = 0;
    this.lastLoss = NaN;
  };

  Trainer.prototype._buffers = function () {
    var o = this.options, size = o.m * o.n;
    this.gW = new Float64Array(size); this.gb = new Float64Array(o.n);
    if (!this.mW || this.mW.length !== size) {
      this.mW = new Float64Array(size); this.vW = new Float64Array(size);
      this.mb = new Float64Array(o.n); this.vb = new Float64Array(o.n);
    }
    this.x = new Float64Array(o.batch * o.n);
    this.p = new Float64Array(o.n).fill(o.density);
    this.imp = new Float64Array(o.n);
    for (var i = 0; i < o.n; i++) this.imp[i] = Math.pow(o.decay, i);
  };

  // Copy the overlapping (rows, cols) block of an old (m0, n0) array into a new (m1, n1) one
  function resize(old, m0, n0, fresh, m1, n1) {
    for (var k = 0; k < Math.min(m0, m1); k++) {
      for (var i = 0; i < Math.min(n0, n1); i++) fresh[k * n1 + i] = old[k * n0 + i];
    }
    return fresh;
  }

  Trainer.prototype.set = function (changes) {
    var o = Object.assign({}, this.options, changes || {});
    checkOptions(o);
    var old = this.options;
    this.options = o;
    if (o.seed !== old.seed) { this.reset(); return this; }
    if (o.n !== old.n || o.m !== old.m) {
      var W = xavier(this.initRng, o.m, o.n); // fresh entries where the model grows
      this.W = resize(this.W, old.m, old.n, W, o.m, o.n);
      var b = new Float64Array(o.n);
      b.set(this.b.subarray(0, Math.min(old.n, o.n)));
      this.b = b;
      var z = function () { return new Float64Array(o.m * o.n); };
      this.mW = resize(this.mW, old.m, old.n, z(), o.m, o.n);
      this.vW = resize(this.vW, old.m, old.n, z(), o.m, o.n);
      this.mb = resize(this.mb, 1, old.n, new Float64Array(o.n), 1, o.n);
      this.vb = resize(this.vb, 1, old.n, new Float64Array(o.n), 1, o.n);
    }
    this._buffers();
    return this;
  };

  // Start from given weights W (m rows of n numbers) and b (n numbers), e.g. those of a
  // supersim.ToyModel, with fresh AdamW state; the data stream carries on.
  Trainer.prototype.load = function (W, b) {
    var o = this.options;
    if (!(W.length === o.m && W.every(function (row) { return row.length === o.n; }))) {
      throw new RangeError("W must be " + o.m + " rows of " + o.n + " numbers");
    }
    if (b.length !== o.n) throw new RangeError("b must hold " + o.n + " numbers, got " + b.length);
    for (var k = 0; k < o.m; k++) for (var i = 0; i < o.n; i++) this.W[k * o.n + i] = W[k][i];
    this.b = Float64Array.from(b);
    this.mW.fill(0); this.vW.fill(0); this.mb.fill(0); this.vb.fill(0);
    this.t = 0;
    return this;
  };

  // Train k steps; return the mean loss over them (each step's loss is on its own batch,
  // before its update, as supersim.train records it).
  Trainer.prototype.train = function (k) {
    var o = this.options, total = 0;
    for (var s = 0; s < k; s++) {
      this.dataRng.sparseBatch(this.p, o.batch, this.x);
      var l = lossAndGrads(this.W, this.b, o.m, o.n, this.x, o.batch, this.imp, this.gW, this.gb);
      this.t += 1;
      adamw(this.W, this.gW, this.mW, this.vW, this.t, o.lr, o.weightDecay);
      adamw(this.b, this.gb, this.mb, this.vb, this.t, o.lr, o.weightDecay);
      this.lastLoss = l;
      total += l;
      this.steps += 1;
    }
    return k > 0 ? total / k : NaN;
  };

  // W as an array of m rows of n numbers (row k = hidden dimension k)
  Trainer.prototype.weights = function () {
    var o = this.options, rows = [];
    for (var k = 0; k < o.m; k++) rows.push(Array.from(this.W.subarray(k * o.n, (k + 1) * o.n)));
    return rows;
  };

  Trainer.prototype.dimensionality = function () {
    return Array.from(dimensionality(this.W, this.options.m, this.options.n));
  };

  return {
    Rng: Rng, xavier: xavier, lossAndGrads: lossAndGrads, loss: loss, adamw: adamw,
    dimensionality: dimensionality, Trainer: Trainer, DEFAULTS: DEFAULTS,
    BETA1: BETA1, BETA2: BETA2, EPS: EPS,
  };
});
