import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { constant, warmupCosine } from "./schedule.ts";

function close(actual: number, expected: number, tol = 1e-12): void {
  assert.ok(Math.abs(actual - expected) <= tol, `got ${actual}, expected ${expected}`);
}

test("without warm-up: cosine from baseLr to minLr at hand-computed steps", () => {
  const lr = warmupCosine({ baseLr: 1, minLr: 0, totalSteps: 10, warmupSteps: 0 });
  close(lr(0), 1);
  // cos(π/5) = cos 36° = (1 + √5)/4, so lr(2) = (1 + (1 + √5)/4)/2 = (5 + √5)/8.
  close(lr(2), (5 + Math.sqrt(5)) / 8);
  close(lr(5), 0.5);
  close(lr(10), 0);
});

test("without warm-up it equals PyTorch CosineAnnealingLR's recursive update", () => {
  // PyTorch docs: η_{t+1} = η_min + (η_t − η_min)(1 + cos(π(t+1)/T)) / (1 + cos(π t/T)), η_0 = base.
  const base = 0.1;
  const min = 0.01;
  const T = 100;
  const lr = warmupCosine({ baseLr: base, minLr: min, totalSteps: T, warmupSteps: 0 });
  let eta = base;
  for (let t = 0; t < T; t++) {
    close(lr(t), eta, 1e-12);
    eta = min + ((eta - min) * (1 + Math.cos((Math.PI * (t + 1)) / T))) / (1 + Math.cos((Math.PI * t) / T));
  }
  close(lr(T), eta, 1e-12);
  // t = 25: 0.01 + 0.09 · (1 + √2/2) / 2
  close(lr(25), 0.01 + (0.09 * (1 + Math.SQRT1_2)) / 2);
});

test("with minLr = 0 it equals HF get_cosine_schedule_with_warmup (num_cycles = 0.5)", () => {
  // HF lr_lambda: s < w → s / max(1, w); else 0.5 (1 + cos(π · (s − w) / max(1, T − w))).
  const w = 7;
  const T = 40;
  const base = 3e-4;
  const lr = warmupCosine({ baseLr: base, minLr: 0, totalSteps: T, warmupSteps: w });
  for (let s = 0; s <= T; s++) {
    const factor = s < w ? s / Math.max(1, w) : 0.5 * (1 + Math.cos((Math.PI * (s - w)) / Math.max(1, T - w)));
    close(lr(s), base * factor, 1e-15);
  }
});

test("warm-up ramps linearly from 0, then decays to minLr and stays there", () => {
  const lr = warmupCosine({ baseLr: 1e-3, minLr: 1e-5, totalSteps: 110, warmupSteps: 10 });
  close(lr(0), 0);
  close(lr(5), 5e-4, 1e-15);
  close(lr(10), 1e-3, 1e-15);
  // Half-way through the 100 decay steps the cosine term is 1/2: (1e-3 + 1e-5)/2.
  close(lr(60), 5.05e-4, 1e-15);
  close(lr(110), 1e-5, 1e-15);
  close(lr(1000), 1e-5, 1e-15);
});

test("constant returns its lr at every step", () => {
  const lr = constant(2e-4);
  assert.equal(lr(0), 2e-4);
  assert.equal(lr(12345), 2e-4);
});

test("invalid schedule arguments throw ConfigError", () => {
  const ok = { baseLr: 1e-3, minLr: 0, totalSteps: 10, warmupSteps: 2 };
  assert.throws(() => warmupCosine({ ...ok, baseLr: 0 }), ConfigError);
  assert.throws(() => warmupCosine({ ...ok, minLr: 2e-3 }), ConfigError);
  assert.throws(() => warmupCosine({ ...ok, totalSteps: 0 }), ConfigError);
  assert.throws(() => warmupCosine({ ...ok, totalSteps: 2.5 }), ConfigError);
  assert.throws(() => warmupCosine({ ...ok, warmupSteps: 10 }), /warmupSteps must be/);
  assert.throws(() => warmupCosine(ok)(-1), ConfigError);
  assert.throws(() => constant(NaN), ConfigError);
});
