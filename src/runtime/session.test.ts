import { mock, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { FeedError, UseAfterDisposeError } from "../errors.ts";
import * as b from "../ir/builder.ts";
import { Graph } from "../ir/graph.ts";
import { WeightStore } from "../onnx/weight-store.ts";
import { f32, i64 } from "../tensor/host.ts";
import { Rng } from "../tensor/random.ts";
import { compile, nodeRuntime, nodeRuntimeWith } from "./session.ts";

test("feed validation reports every missing, extra, mistyped and misshaped input in one error", async () => {
  const g = new Graph();
  const a = g.input("a", "float32", [2, 3]);
  const ids = g.input("ids", "int64", [4]);
  const c = g.input("c", "float32", ["batch", 3]);
  const d = g.input("d", "float32", ["batch"]);
  const e = g.input("e", "float32", [2]);
  const total = (v: typeof a) => b.reduceSum(v, [...Array(v.rank).keys()]);
  g.output(
    "y",
    [a, b.cast(ids, "float32"), c, d, e].map(total).reduce((p, q) => b.add(p, q)),
  );
  const s = await compile(g, { threads: 1 });
  try {
    let err: unknown;
    try {
      await s.run({
        ids: f32([4]), // wrong dtype
        c: f32([2, 4]), // wrong inner dim
        d: f32([5]), // "batch" bound to 2 by c, 5 here
        e: { dtype: "float32", shape: [2], data: new Float32Array(3) }, // data does not fill the shape
        extra1: f32([1]),
        extra2: i64([1], [0]),
      });
    } catch (x) {
      err = x;
    }
    assert.ok(err instanceof FeedError, `a FeedError, got ${err}`);
    const m = err.message;
    for (const part of [
      "missing inputs: a",
      "unexpected inputs: extra1, extra2",
      "the graph takes a, ids, c, d, e",
      "ids: dtype float32, expected int64",
      "c: shape [2,4], expected [batch,3]",
      "d: shape [5], expected [batch]",
      "e: 3 values for shape [2]",
    ]) {
      assert.ok(m.includes(part), `"${part}" missing from: ${m}`);
    }
    // a good feed still runs after a bad one
    const ok = await s.run({ a: f32([2, 3]), ids: i64([4], [1, 2, 3, 4]), c: f32([2, 3]), d: f32([2], [1, 2]), e: f32([2], [3, 4]) });
    // Σ ids + Σ d + Σ e = 10 + 3 + 7
    assert.deepEqual(Array.from(ok.y.data as Float32Array), [20]);
  } finally {
    s.dispose();
  }
});

test("symbolic dims take any size, consistently across inputs", async () => {
  const g = new Graph();
  const x = g.input("x", "float32", ["batch", 2]);
  const m = g.input("m", "float32", ["batch", 1]);
  g.output("y", b.mul(x, m));
  const s = await compile(g, { threads: 1 });
  try {
    for (const n of [1, 3]) {
      const y = await s.run({
        x: f32(
          [n, 2],
          Array.from({ length: 2 * n }, (_, i) => i),
        ),
        m: f32([n, 1], new Array(n).fill(2)),
      });
      assert.deepEqual(y.y.shape, [n, 2]);
      assert.deepEqual(
        Array.from(y.y.data as Float32Array),
        Array.from({ length: 2 * n }, (_, i) => 2 * i),
      );
    }
    await assert.rejects(s.run({ x: f32([3, 2]), m: f32([2, 1]) }), /m: shape \[2,1\], expected \[batch,1\]/);
  } finally {
    s.dispose();
  }
});

test("run after dispose throws UseAfterDisposeError; dispose twice is harmless", async () => {
  const g = new Graph();
  const x = g.input("x", "float32", [2]);
  g.output("y", b.neg(x));
  const s = await compile(g, { threads: 1 });
  assert.equal(s.disposed, false);
  assert.deepEqual(Array.from((await s.run({ x: f32([2], [1, -2]) })).y.data as Float32Array), [-1, 2]);
  s.dispose();
  assert.equal(s.disposed, true);
  await assert.rejects(s.run({ x: f32([2], [1, -2]) }), UseAfterDisposeError);
  assert.throws(() => s.endProfiling(), UseAfterDisposeError);
  s.dispose();
});

test("preallocated outputs are written in place and returned", async () => {
  const g = new Graph();
  const x = g.input("x", "float32", [2, 3]);
  g.output("y", b.mul(x, 2));
  g.output("z", b.reduceSum(x, [1]));
  const s = await compile(g, { threads: 1 });
  try {
    const y = f32([2, 3]);
    const buffer = y.data;
    for (const k of [1, 3]) {
      const out = await s.run(
        {
          x: f32(
            [2, 3],
            [1, 2, 3, 4, 5, 6].map((v) => v * k),
          ),
        },
        { y },
      );
      assert.deepEqual(
        Array.from(buffer as Float32Array),
        [2, 4, 6, 8, 10, 12].map((v) => v * k),
        "ORT wrote into the buffer",
      );
      assert.equal(out.y.data, buffer, "the result is the preallocated buffer, not a copy");
      assert.deepEqual(Array.from(out.z.data as Float32Array), [6 * k, 15 * k], "outputs without a buffer are allocated");
    }
  } finally {
    s.dispose();
  }
});

test("a failing run logs a compact feed summary and rethrows the original error", async () => {
  const g = new Graph();
  const data = g.input("data", "float32", [3, 2]);
  const idx = g.input("idx", "int64", [2]);
  g.output("y", b.gather(data, idx));
  const s = await compile(g, { threads: 1 });
  const logged = mock.method(console, "error", () => {});
  try {
    await assert.rejects(
      s.run({ data: f32([3, 2]), idx: i64([2], [0, 7]) }),
      (e: unknown) => e instanceof Error && !(e instanceof FeedError) && /Gather/.test(e.message),
    );
    assert.equal(logged.mock.callCount(), 1);
    const line = String(logged.mock.calls[0].arguments[0]);
    assert.ok(line.includes("data:float32[3,2]") && line.includes("idx:int64[2]"), line);
  } finally {
    logged.mock.restore();
    s.dispose();
  }
});

test("a WeightStore keeps large initializers in one shared external file with inline-equal results", async () => {
  const rows = 250;
  const cols = 128; // 125 KiB of float32: above the 64 KiB external threshold, not a multiple of 64 KiB
  const big = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) / 16);
  const small = Float32Array.from({ length: cols }, (_, i) => i / cols); // 512 B: stays inline
  const other = Float32Array.from({ length: cols * cols }, (_, i) => Math.cos(i) / 16); // exactly 64 KiB
  const makeGraph = (variant: number) => {
    const g = new Graph();
    const x = g.input("x", "float32", [3, rows]);
    const w = g.initializer("w", big, [rows, cols]);
    const bias = g.initializer("bias", small, [cols]);
    let y = b.add(b.matmul(x, w), bias); // [3, cols]
    if (variant === 1) y = b.tanh(y);
    if (variant === 2) y = b.matmul(y, g.initializer("w2", other, [cols, cols]));
    g.output("y", y);
    return g;
  };
  const xs = f32(
    [3, rows],
    Array.from({ length: 3 * rows }, (_, i) => Math.cos(i * 0.37)),
  );
  const store = new WeightStore();
  const file = join(store.dir, store.file);
  try {
    for (const variant of [0, 1]) {
      const inline = await compile(makeGraph(variant), { threads: 1 });
      const external = await compile(makeGraph(variant), { threads: 1, store });
      try {
        const want = (await inline.run({ x: xs })).y.data as Float32Array;
        const got = (await external.run({ x: xs })).y.data as Float32Array;
        assert.deepEqual(Array.from(got), Array.from(want), `variant ${variant}: external equals inline`);
        assert.ok(want.some((v) => v !== 0));
      } finally {
        inline.dispose();
        external.dispose();
      }
      // both graphs share the one copy of w; the small bias never reaches the file
      assert.equal(statSync(file).size, big.byteLength, `after variant ${variant}`);
      const models = readdirSync(store.dir).filter((f) => f.endsWith(".onnx"));
      assert.ok(models.length > 0 && models.every((f) => statSync(join(store.dir, f)).size < 16 * 1024), "models hold no copy of w");
    }
    // a second large weight is appended at the next 64 KiB boundary
    const third = await compile(makeGraph(2), { threads: 1, store });
    const thirdInline = await compile(makeGraph(2), { threads: 1 });
    try {
      assert.equal(statSync(file).size, Math.ceil(big.byteLength / 65536) * 65536 + other.byteLength);
      assert.deepEqual(Array.from((await third.run({ x: xs })).y.data as Float32Array), Array.from((await thirdInline.run({ x: xs })).y.data as Float32Array));
    } finally {
      third.dispose();
      thirdInline.dispose();
    }
  } finally {
    store.dispose();
  }
  assert.equal(existsSync(store.dir), false, "dispose removes the store's folder");
});

test("nodeRuntimeWith({ quantize: 'q8' }) runs a graph with int8 weight matrices, its weights in the store: a product within the 8-bit rounding of float32's", async () => {
  const rows = 256;
  const cols = 96; // 96 KiB of float32: the weight lives in the store's external file
  const rng = new Rng(4);
  const w = rng.normalArray(rows * cols, 1 / 16);
  const x = f32([2, rows], rng.normalArray(2 * rows, 1));
  const graph = () => {
    const g = new Graph();
    g.output("y", b.matmul(g.input("x", "float32", [2, rows]), g.initializer("w", w, [rows, cols])));
    return g;
  };
  const run = async (runtime: typeof nodeRuntime) => {
    const compiler = runtime.compiler();
    try {
      const s = await compiler.compile(graph(), { threads: 1 });
      return (await s.run({ x })).y.data as Float32Array;
    } finally {
      compiler.dispose();
    }
  };
  const exact = await run(nodeRuntime);
  const q8 = await run(nodeRuntimeWith({ quantize: "q8" }));
  const scale = Math.max(...exact.map(Math.abs));
  const err = Math.max(...exact.map((v, i) => Math.abs(v - q8[i])));
  // int8 weights and uint8 activations: a few 1/127 steps of the largest |y|, not zero (the path is taken)
  assert.ok(err > 0 && err < 0.03 * scale, `q8 vs float32: max |Δy| ${err} of max |y| ${scale}`);
});
