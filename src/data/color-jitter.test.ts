import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../tensor/random.ts";
import { ConfigError } from "../errors.ts";
import { applyJitter, sampleJitter, validateJitter, type JitterDraw } from "./color-jitter.ts";

const identity: JitterDraw = { order: ["brightness", "contrast", "saturation", "hue"], brightness: 1, contrast: 1, saturation: 1, hue: 0 };

function jitter(pixels: number[], draw: Partial<JitterDraw>): number[] {
  const rgb = Float32Array.from(pixels);
  applyJitter(rgb, { ...identity, ...draw });
  return Array.from(rgb);
}

function close(actual: number[], expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]) <= tol, `index ${i}: ${a} vs ${expected[i]}`));
}

test("identity factors leave the image unchanged", () => {
  close(jitter([0.8, 0.4, 0.2, 0.1, 0.9, 0.5], {}), [0.8, 0.4, 0.2, 0.1, 0.9, 0.5]);
});

test("brightness scales every channel and clamps at 1", () => {
  close(jitter([0.8, 0.4, 0.2], { brightness: 0.5 }), [0.4, 0.2, 0.1]);
  close(jitter([0.8, 0.4, 0.2], { brightness: 2 }), [1, 0.8, 0.4]);
});

test("contrast 0 replaces every value by the image's mean grey level", () => {
  // grey(1,0,0) = 0.299, grey(0,0,1) = 0.114 → mean 0.2065
  close(jitter([1, 0, 0, 0, 0, 1], { contrast: 0 }), [0.2065, 0.2065, 0.2065, 0.2065, 0.2065, 0.2065]);
});

test("saturation 0 turns each pixel into its own grey level", () => {
  close(jitter([1, 0, 0, 0, 1, 0], { saturation: 0 }), [0.299, 0.299, 0.299, 0.587, 0.587, 0.587]);
});

test("hue shifts rotate the colour wheel and leave grey alone", () => {
  close(jitter([1, 0, 0], { hue: 1 / 3 }), [0, 1, 0]); // red → green
  close(jitter([1, 0, 0], { hue: -1 / 3 }), [0, 0, 1]); // red → blue
  close(jitter([1, 0.5, 0], { hue: 0.5 }), [0, 0.5, 1]); // 30° → 210°
  close(jitter([0.3, 0.3, 0.3], { hue: 0.25 }), [0.3, 0.3, 0.3]);
});

test("the adjustments apply in the drawn order", () => {
  // (0.6, 0.2, 0): brightness 2 clamps red to 1 → (1, 0.4, 0) → grey 0.299 + 0.2348 = 0.5338;
  // saturation first: grey 0.1794 + 0.1174 = 0.2968, then doubled = 0.5936
  const a = jitter([0.6, 0.2, 0], { order: ["brightness", "saturation"], brightness: 2, saturation: 0 });
  const b = jitter([0.6, 0.2, 0], { order: ["saturation", "brightness"], brightness: 2, saturation: 0 });
  close(a, [0.5338, 0.5338, 0.5338]);
  close(b, [0.5936, 0.5936, 0.5936]);
});

test("draws follow torchvision's ranges and the apply probability", () => {
  const opts = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4, p: 0.5 };
  const rng = new Rng(7);
  let applied = 0;
  for (let i = 0; i < 4000; i++) {
    const d = sampleJitter(opts, rng);
    if (!d) continue;
    applied++;
    for (const f of [d.brightness, d.contrast, d.saturation]) assert.ok(f >= 0.6 && f <= 1.4);
    assert.ok(Math.abs(d.hue) <= 0.4);
    assert.deepEqual([...d.order].sort(), ["brightness", "contrast", "hue", "saturation"]);
  }
  assert.ok(Math.abs(applied / 4000 - 0.5) < 0.03, `applied ${applied}/4000`);
});

test("invalid jitter settings are ConfigErrors", () => {
  const ok = { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4, p: 0.5 };
  assert.throws(() => validateJitter({ ...ok, hue: 0.6 }), ConfigError);
  assert.throws(() => validateJitter({ ...ok, brightness: -1 }), ConfigError);
  assert.throws(() => validateJitter({ ...ok, p: 2 }), ConfigError);
});
