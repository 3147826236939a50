// How often the panel's model forms a pentagon: seeds 0 to 31 of the in-page trainer
// (supersim/live/toy_model.js) at the panel's starting settings, each trained as long as
// supersim.train trains (10,000 steps, one to a few seconds of play), then judged by chapter
// 4's test: all five features represented (norm above 0.9) and neighbouring directions 72
// degrees apart to within 5.
//
// Chapter 4 says in how many runs `ss.train` forms the pentagon at these settings. Run by
// `pytest tests/test_live.py`, SUPERSIM_SEEDS_FIXTURE holds the panel's settings and the count
// `ss.train` reached over as many seeds, and the two counts must agree within sampling error;
// run alone (`node --test tests/js/`), the panel's own defaults are used and only "some seeds,
// not all" is checked.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");

const T = require(path.join(__dirname, "..", "..", "supersim", "live", "toy_model.js"));

const fixturePath = process.env.SUPERSIM_SEEDS_FIXTURE;
const fixture = fixturePath ? JSON.parse(fs.readFileSync(fixturePath, "utf8")) : null;
const SEEDS = fixture ? fixture.seeds : 32;
const STEPS = fixture ? fixture.steps : 10000;
const OPTIONS = fixture ? fixture.options : T.DEFAULTS;

// chapter 4's is_pentagon, for W (2, 5) row-major
function isPentagon(W, n) {
  const angles = [];
  for (let i = 0; i < n; i++) {
    if (!(Math.hypot(W[i], W[n + i]) > 0.9)) return false;
    angles.push(Math.atan2(W[n + i], W[i]));
  }
  angles.sort((a, b) => a - b);
  return angles.every((a, i) => {
    const next = i + 1 < n ? angles[i + 1] : angles[0] + 2 * Math.PI;
    return Math.abs(((next - a) * 180) / Math.PI - 72) < 5;
  });
}

test("the pentagon test: a regular pentagon passes; a pair, a dropped feature or a skew fails", () => {
  const polygon = (deg, norms) => {
    const W = new Float64Array(10);
    deg.forEach((d, i) => { W[i] = norms[i] * Math.cos((d * Math.PI) / 180); W[5 + i] = norms[i] * Math.sin((d * Math.PI) / 180); });
    return W;
  };
  const one = [1, 1, 1, 1, 1];
  assert.ok(isPentagon(polygon([10, 82, 154, 226, 298], one), 5));
  assert.ok(isPentagon(polygon([0, 144, 288, 72, 216], one), 5), "any order of the features");
  assert.ok(!isPentagon(polygon([0, 72, 144, 216, 288], [1, 1, 1, 1, 0.5]), 5), "a short feature");
  assert.ok(!isPentagon(polygon([0, 180, 90, 270, 0], [1, 1, 1, 1, 0]), 5), "pairs and a dropped one");
  assert.ok(!isPentagon(polygon([0, 78, 144, 216, 288], one), 5), "a gap 6 degrees off");
});

test(`some seeds of 0 to ${SEEDS - 1} form a pentagon within ${STEPS} steps, as often as ss.train's`, (t) => {
  const pentagons = [];
  for (let seed = 0; seed < SEEDS; seed++) {
    const tr = new T.Trainer({ ...OPTIONS, seed });
    tr.train(STEPS);
    if (isPentagon(tr.W, tr.options.n)) pentagons.push(seed);
  }
  const k = pentagons.length;
  t.diagnostic(`pentagons from ${k} of ${SEEDS} seeds: ${pentagons.join(", ")}`);
  assert.ok(k > 0 && k < SEEDS, `${k} of ${SEEDS} seeds: chapter 4 says some do and some do not`);
  if (!fixture) return;
  // two binomial counts of the same chance: |k1 - k2| / n within 3 standard errors
  const k2 = fixture.train_count, p = (k + k2) / (2 * SEEDS);
  const se = Math.sqrt((2 * p * (1 - p)) / SEEDS);
  assert.ok(Math.abs(k - k2) / SEEDS <= 3 * se,
    `pentagons: ${k} of ${SEEDS} seeds in JavaScript, ${k2} of ${SEEDS} with ss.train`);
});
