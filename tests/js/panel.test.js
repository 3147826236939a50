// Node's test runner on the panel's page-free parts (supersim/live/panel.js): the settings it
// accepts, its steps/s meter and its play loop, driven here by a clock the test controls.
// The panel itself, in a page, is tested in Chromium by tests/test_browser.py.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const P = require(path.join(__dirname, "..", "..", "supersim", "live", "panel.js"));
const T = require(path.join(__dirname, "..", "..", "supersim", "live", "toy_model.js"));

test("settings the panel cannot show are rejected with the allowed range", () => {
  const bad = [
    [{ m: 1 }, /m must be an integer in \[2, 3\], got 1/], // no second axis to draw
    [{ m: 4 }, /m must be an integer in \[2, 3\], got 4/],
    [{ density: 0 }, /density must be a number in \[0.01, 1\], got 0/], // log-scale slider
    [{ density: 1.5 }, /density must be a number in \[0.01, 1\]/],
    [{ n: 9 }, /n must be an integer in \[2, 8\], got 9/],
    [{ n: 2.5 }, /n must be an integer/],
    [{ decay: 0.5 }, /decay must be a number in \[0.7, 1\]/],
    [{ lr: 1 }, /lr must be a number in \[0.0001, 0.03\]/],
    [{ lr: NaN }, /lr must be a number/],
    [{ density: "0.5" }, /density must be a number/],
    [{ seed: -1 }, /seed must be an integer in \[0, 4294967295\]/],
    [{ batch: 0 }, /batch must be an integer in \[1, 65536\]/],
    [{ weightDecay: -0.1 }, /weightDecay must be a number in \[0, 1\]/],
    [{ hidden: 2 }, /unknown setting "hidden": the panel takes n, m, density/],
  ];
  for (const [changes, message] of bad) {
    assert.throws(() => P.checkChanges(changes), message, JSON.stringify(changes));
  }
  assert.throws(() => P.checkChanges(null), /changes must be an object/);
});

test("every setting at the ends of its range is accepted, by the panel and its trainer", () => {
  for (const [key, [lo, hi]] of Object.entries(P.RANGES)) {
    for (const v of [lo, hi]) {
      assert.deepEqual(P.checkChanges({ [key]: v }), { [key]: v });
      const tr = new T.Trainer({ [key]: v, batch: key === "batch" ? v : 8 });
      assert.ok(Number.isFinite(tr.train(1)), `${key} = ${v}: the trainer cannot take it`);
    }
  }
  // the panel starts at supersim.train's settings, which lie inside its ranges
  P.checkChanges({ ...T.DEFAULTS });
});

test("the rate meter counts steps over wall-clock time, drawing and idle time included", () => {
  // a frame every 16 ms: 10 ms of training (500 steps), 4 ms of drawing, 2 ms of waiting
  const meter = new P.RateMeter(1000);
  let rate = 0;
  for (let k = 0; k <= 200; k++) rate = meter.sample(16 * k, 500 * k);
  assert.ok(Math.abs(rate - 500 / 0.016) < 1e-6, `rate ${rate}, want ${500 / 0.016}`);
  assert.ok(rate < 0.7 * (500 / 0.010), "not the training-only rate");
  // it follows a change of pace within its window (one second)
  let steps = 500 * 200;
  for (let k = 201; k <= 300; k++) { steps += 100; rate = meter.sample(16 * k, steps); }
  assert.ok(Math.abs(rate - 100 / 0.016) < 1e-6, `after slowing down: ${rate}`);
  // a reset (fewer steps than before) starts a new window; so does restart()
  assert.equal(meter.sample(16 * 301, 0), 0);
  assert.ok(Math.abs(meter.sample(16 * 302, 100) - 100 / 0.016) < 1e-6);
  meter.restart();
  assert.equal(meter.sample(16 * 303, 200), 0, "no time has passed in the new window");
});

// The play loop with a simulated page: training costs `cost` ms per step, drawing `drawMs`,
// and the next frame comes at the next multiple of 1000 / 60 ms, as a 60 Hz display gives them.
function simulate({ cost, drawMs, frames, visible = () => true }) {
  const world = { t: 0, steps: 0, queue: [], draws: 0 };
  const vsync = 1000 / 60;
  const player = new P.Player({
    now: () => world.t,
    schedule: (fn) => world.queue.push(fn),
    train: (k) => { world.steps += k; world.t += k * cost; },
    steps: () => world.steps,
    draw: () => { world.draws += 1; world.t += drawMs; },
    visible,
  });
  player.play();
  const log = [];
  for (let f = 0; f < frames && world.queue.length; f++) {
    world.t = Math.ceil(world.t / vsync + 1e-9) * vsync; // wait for the next frame
    log.push({ t: world.t, steps: world.steps });
    world.queue.shift()();
    log[log.length - 1].rate = player.rate;
  }
  return { player, world, log };
}

test("the play loop reports steps per second of wall-clock time, not of training alone", () => {
  // 25 steps take 0.5 ms, so a 10 ms budget trains 500 steps; drawing takes 3 ms
  const { log, world } = simulate({ cost: 0.02, drawMs: 3, frames: 240 });
  assert.equal(world.draws, 240, "one drawing per frame");
  const last = log[log.length - 1], before = log.find((e) => e.t >= last.t - 1000);
  const wall = (1000 * (last.steps - before.steps)) / (last.t - before.t);
  const training = 1000 / 0.02; // steps per second while training
  assert.ok(Math.abs(last.rate / wall - 1) < 0.02, `shown ${last.rate}, wall-clock ${wall}`);
  assert.ok(last.rate < 0.75 * training, `shown ${last.rate}: that is the training-only rate`);
  // a slower page (30 ms of drawing) shows a lower rate for the same training speed
  const slow = simulate({ cost: 0.02, drawMs: 30, frames: 120 }).log;
  const s = slow[slow.length - 1], s0 = slow.find((e) => e.t >= s.t - 1000);
  const slowWall = (1000 * (s.steps - s0.steps)) / (s.t - s0.t);
  assert.ok(Math.abs(s.rate / slowWall - 1) < 0.02 && s.rate < 0.6 * last.rate, `${s.rate} vs ${slowWall}`);
});

test("the play loop stops on pause and neither trains nor counts time out of sight", () => {
  let shown = true;
  const { player, world } = simulate({ cost: 0.02, drawMs: 3, frames: 30, visible: () => shown });
  assert.ok(player.rate > 0);
  shown = false;
  const steps = world.steps;
  world.queue.shift()();
  assert.equal(world.steps, steps, "a hidden panel trains");
  assert.equal(player.rate, 0);
  player.pause();
  assert.equal(player.rate, 0);
  world.queue.shift()(); // the frame already asked for does nothing once paused
  assert.equal(world.queue.length, 0, "a paused loop asks for no further frames");
});
