// Train the in-page toy model in Node for tests/test_live.py: read a JSON list of runs
// ({"options": {...}, "steps": k, optionally "W" and "b" to start from}) on stdin, print one {"W", "b", "loss"} per run as JSON.
"use strict";
const path = require("node:path");
const T = require(path.join(__dirname, "..", "..", "supersim", "live", "toy_model.js"));

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((run) => {
    const tr = new T.Trainer(run.options);
    if (run.W) tr.load(run.W, run.b);
    const loss = tr.train(run.steps);
    return { W: tr.weights(), b: Array.from(tr.b), loss, steps: tr.steps };
  });
  process.stdout.write(JSON.stringify(out));
});
