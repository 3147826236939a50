// Node's test runner on the in-page trainer (supersim/live/toy_model.js): the hand-written
// gradients against finite differences and against torch, AdamW against torch.optim.AdamW,
// the sampler's statistics, and the trainer's seeding and continuation rules.
//
// `pytest tests/test_live.py` runs this file with SUPERSIM_TORCH_FIXTURE pointing at numbers
// it has just computed with torch, so the two implementations cannot drift apart; run alone
// (`node --test tests/js/`), the torch comparisons are skipped and say so.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const T = require(path.join(__dirname, "..", "..", "supersim", "live", "toy_model.js"));

function randomProblem(seed, m, n, B, density) {
  const rng = new T.Rng(seed, 7);
  const W = Float64Array.from({ length: m * n }, () => rng.normal() * 0.7);
  const b = Float64Array.from({ length: n }, () => rng.normal() * 0.2);
  const x = rng.sparseBatch(new Float64Array(n).fill(density), B, new Float64Array(B * n));
  const imp = Float64Array.from({ length: n }, (_, i) => Math.pow(0.8, i));
  return { W, b, x, imp };
}

function close(a, b, tol, what) {
  assert.equal(a.length, b.length, `${what}: lengths differ`);
  for (let e = 0; e < a.length; e++) {
    const scale = Math.max(1, Math.abs(b[e]));
    assert.ok(Math.abs(a[e] - b[e]) <= tol * scale, `${what}[${e}]: ${a[e]} vs ${b[e]}`);
  }
}

test("gradients match central finite differences", () => {
  for (const [m, n] of [[2, 5], [3, 8], [1, 2]]) {
    const { W, b, x, imp } = randomProblem(m * 10 + n, m, n, 64, 0.5);
    const gW = new Float64Array(m * n), gb = new Float64Array(n);
    T.lossAndGrads(W, b, m, n, x, 64, imp, gW, gb);
    const h = 1e-6;
    const numeric = (arr, e) => {
      const keep = arr[e];
      arr[e] = keep + h; const up = T.loss(W, b, m, n, x, 64, imp);
      arr[e] = keep - h; const down = T.loss(W, b, m, n, x, 64, imp);
      arr[e] = keep;
      return (up - down) / (2 * h);
    };
    close(gW, Float64Array.from(gW, (_, e) => numeric(W, e)), 1e-6, `dL/dW (m=${m}, n=${n})`);
    close(gb, Float64Array.from(gb, (_, e) => numeric(b, e)), 1e-6, `dL/db (m=${m}, n=${n})`);
  }
});

test("the loss is the importance-weighted squared error averaged over batch and features", () => {
  const m = 2, n = 3, B = 2;
  const W = Float64Array.from([1, 0, 0.5, 0, 1, -0.5]);
  const b = Float64Array.from([0, -0.1, 0.2]);
  const x = Float64Array.from([0.5, 0, 1, 0, 0.25, 0]);
  const imp = Float64Array.from([1, 0.5, 2]);
  let want = 0;
  for (let r = 0; r < B; r++) {
    const h = [0, 1].map((k) => [0, 1, 2].reduce((s, i) => s + W[k * n + i] * x[r * n + i], 0));
    for (let i = 0; i < n; i++) {
      const out = Math.max(0, b[i] + W[i] * h[0] + W[n + i] * h[1]);
      want += imp[i] * (out - x[r * n + i]) ** 2;
    }
  }
  assert.ok(Math.abs(T.loss(W, b, m, n, x, B, imp) - want / (B * n)) < 1e-15);
});

test("sampler: active with probability p, active values uniform on [0, 1)", () => {
  const p = Float64Array.from([0, 0.02, 0.3, 1]);
  const B = 200000, n = p.length;
  const x = new T.Rng(3, 1).sparseBatch(p, B, new Float64Array(B * n));
  for (let i = 0; i < n; i++) {
    let active = 0, sum = 0, sq = 0, lo = Infinity, hi = -Infinity;
    for (let r = 0; r < B; r++) {
      const v = x[r * n + i];
      if (v !== 0) { active++; sum += v; sq += v * v; lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    const frac = active / B;
    // four standard errors of a binomial proportion
    const se = Math.sqrt(p[i] * (1 - p[i]) / B);
    assert.ok(Math.abs(frac - p[i]) <= 4 * se + 1e-12, `feature ${i}: active ${frac}, want ${p[i]}`);
    if (active < 1000) continue;
    const mean = sum / active, variance = sq / active - mean * mean;
    // U[0, 1): mean 1/2 (sd of the mean sqrt(1/12/N)), variance 1/12
    assert.ok(Math.abs(mean - 0.5) < 4 * Math.sqrt(1 / 12 / active), `feature ${i}: mean ${mean}`);
    assert.ok(Math.abs(variance - 1 / 12) < 0.01, `feature ${i}: variance ${variance}`);
    assert.ok(lo >= 0 && hi < 1, `feature ${i}: values outside [0, 1): ${lo}, ${hi}`);
  }
});

test("streams: same seed and stream repeat, other seeds and streams differ", () => {
  const draw = (seed, stream) => Array.from({ length: 8 }, ((r) => () => r.next())(new T.Rng(seed, stream)));
  assert.deepEqual(draw(5, 0), draw(5, 0));
  assert.notDeepEqual(draw(5, 0), draw(5, 1));
  assert.notDeepEqual(draw(5, 0), draw(6, 0));
  assert.throws(() => new T.Rng(-1, 0), /seed must be an integer/);
  assert.throws(() => new T.Rng(1.5, 0), /seed must be an integer/);
});

test("initial weights are Xavier-normal: mean 0, std sqrt(2 / (m + n))", () => {
  const m = 2, n = 5, reps = 20000;
  const rng = new T.Rng(0, 0);
  let sum = 0, sq = 0;
  for (let r = 0; r < reps; r++) for (const w of T.xavier(rng, m, n)) { sum += w; sq += w * w; }
  const N = reps * m * n, std = Math.sqrt(2 / (m + n));
  assert.ok(Math.abs(sum / N) < 4 * std / Math.sqrt(N), `mean ${sum / N}`);
  assert.ok(Math.abs(Math.sqrt(sq / N) / std - 1) < 0.01, `std ${Math.sqrt(sq / N)} vs ${std}`);
});

test("AdamW: the first step moves every entry by lr against its gradient's sign", () => {
  // with bias correction, step 1 is -lr * g / (|g| + eps) after the decay
  const p = Float64Array.from([1, -2, 0.5]), g = Float64Array.from([0.3, -4, 1e-3]);
  const lr = 0.01, wd = 0.1;
  const want = Float64Array.from(p, (v, e) => v * (1 - lr * wd) - lr * g[e] / (Math.abs(g[e]) + T.EPS));
  T.adamw(p, g, new Float64Array(3), new Float64Array(3), 1, lr, wd);
  close(p, want, 1e-12, "first AdamW step");
});

test("one step of training is reproducible however the steps are sliced", () => {
  const a = new T.Trainer({ seed: 3 }), b = new T.Trainer({ seed: 3 });
  a.train(40);
  for (let k = 0; k < 8; k++) b.train(5);
  assert.deepEqual(Array.from(a.W), Array.from(b.W));
  assert.deepEqual(Array.from(a.b), Array.from(b.b));
  const c = new T.Trainer({ seed: 4 });
  c.train(40);
  assert.notDeepEqual(Array.from(a.W), Array.from(c.W));
  a.reset();
  assert.deepEqual(Array.from(a.W), Array.from(new T.Trainer({ seed: 3 }).W), "reset starts over");
  assert.equal(a.steps, 0);
});

test("changing settings continues from the current weights", () => {
  const tr = new T.Trainer({ n: 5, m: 2, seed: 1 });
  tr.train(50);
  const before = tr.weights();
  tr.set({ density: 0.5, lr: 0.01, decay: 1 });
  assert.deepEqual(tr.weights(), before, "density, lr and decay keep the weights");
  assert.equal(tr.steps, 50);
  tr.set({ n: 7 });
  const grown = tr.weights();
  assert.equal(grown[0].length, 7);
  for (let k = 0; k < 2; k++) assert.deepEqual(grown[k].slice(0, 5), before[k], "old features kept");
  tr.set({ n: 3, m: 3 });
  const shrunk = tr.weights();
  assert.equal(shrunk.length, 3);
  for (let k = 0; k < 2; k++) assert.deepEqual(shrunk[k], before[k].slice(0, 3));
  const l = tr.train(10);
  assert.ok(Number.isFinite(l));
  assert.throws(() => tr.set({ n: 0 }), /n must be an integer/);
  assert.throws(() => tr.set({ density: 2 }), /density must lie/);
  assert.equal(tr.options.n, 3, "a rejected change leaves the settings alone");
});

test("feature dimensionality of known polytopes: 1, 1/2, 2/5, and 0 when unlearned", () => {
  const pent = new Float64Array(10);
  for (let i = 0; i < 5; i++) { pent[i] = Math.cos(2 * Math.PI * i / 5); pent[5 + i] = Math.sin(2 * Math.PI * i / 5); }
  close(T.dimensionality(pent, 2, 5), new Float64Array(5).fill(0.4), 1e-12, "pentagon");
  const mixed = Float64Array.from([1, -1, 0, 0, 0, 0, 1, 0]); // an antipodal pair, a lone axis, nothing
  close(T.dimensionality(mixed, 2, 4), Float64Array.from([0.5, 0.5, 1, 0]), 1e-12, "pair + axis");
});

// ---- against torch: numbers computed by tests/test_live.py just before this file runs ------

const fixturePath = process.env.SUPERSIM_TORCH_FIXTURE;
const skip = fixturePath ? false : "needs SUPERSIM_TORCH_FIXTURE: run through pytest tests/test_live.py";
const fixture = fixturePath ? JSON.parse(fs.readFileSync(fixturePath, "utf8")) : null;

test("loss and gradients equal torch autograd's on the same batch", { skip }, () => {
  const f = fixture.grads;
  const gW = new Float64Array(f.m * f.n), gb = new Float64Array(f.n);
  const loss = T.lossAndGrads(Float64Array.from(f.W), Float64Array.from(f.b), f.m, f.n,
    Float64Array.from(f.x), f.batch, Float64Array.from(f.importance), gW, gb);
  close([loss], [f.loss], 1e-12, "loss");
  close(gW, f.gW, 1e-12, "dL/dW");
  close(gb, f.gb, 1e-12, "dL/db");
});

test("AdamW steps equal torch.optim.AdamW's", { skip }, () => {
  const f = fixture.adamw;
  const p = Float64Array.from(f.param0);
  const m = new Float64Array(p.length), v = new Float64Array(p.length);
  f.grads.forEach((g, k) => {
    T.adamw(p, Float64Array.from(g), m, v, k + 1, f.lr, f.weight_decay);
    close(p, f.params[k], 1e-12, `parameters after step ${k + 1}`);
  });
});
