/**
 * Central finite-difference check of the VJP rules, run through ONNX Runtime: the analytic
 * gradient of L = Σ w ⊙ f(x) (w a fixed random cotangent) against (L(x+h) − L(x−h)) / 2h.
 */
import { constant, mul, reduceSum } from "../ir/builder.ts";
import type { DType } from "../ir/dtype-shape.ts";
import { Graph, type Value } from "../ir/graph.ts";
import { type HostArray, type HostTensor, hostTensor } from "../tensor/host.ts";
import { compile } from "./session.ts";
import { Rng } from "../tensor/random.ts";
import { grad } from "../autodiff/vjp.ts";

export interface CheckInput {
  name: string;
  dtype: DType;
  shape: number[];
  data: ArrayLike<number> | BigInt64Array;
  /** Differentiate with respect to this input (float inputs only). Default: true for floats; never for a frozen one. */
  wrt?: boolean;
  /** A frozen weight: held by the graph as an initializer, not fed (ops that read weights only as initializers). */
  frozen?: boolean;
}

/** The graph's values for `inputs`: frozen ones as initializers, the rest as graph inputs. */
export function checkValues(g: Graph, inputs: readonly CheckInput[]): Value[] {
  return inputs.map((i) => (i.frozen ? g.initializer(i.name, toArray(i.dtype, i.data), i.shape, i.dtype) : g.input(i.name, i.dtype, i.shape)));
}

export interface GradCheckOptions {
  /** Finite-difference step (default 1e-6 in float64, 1e-2 in float32). */
  eps?: number;
  rtol?: number;
  atol?: number;
  /** At most this many elements per input are perturbed (spread evenly). */
  maxElements?: number;
  seed?: number;
}

export interface GradCheckResult {
  ok: boolean;
  /** Largest |analytic − numeric| / (atol + rtol·max(|analytic|, |numeric|)); ≤ 1 passes. */
  worst: number;
  failures: string[];
}

function toArray(dtype: DType, data: ArrayLike<number> | BigInt64Array): HostArray {
  if (data instanceof BigInt64Array) return data;
  if (dtype === "float64") return Float64Array.from(data);
  if (dtype === "int64") return BigInt64Array.from(Array.from(data, (v) => BigInt(v)));
  if (dtype === "int32") return Int32Array.from(data);
  if (dtype === "bool" || dtype === "uint8") return Uint8Array.from(data);
  if (dtype === "float16") return Uint16Array.from(data);
  return Float32Array.from(data);
}

/** Compare a graph's reverse-mode gradients with central finite differences, to check a gradient rule. */
export async function gradCheck(build: (...xs: Value[]) => Value, inputs: CheckInput[], opts: GradCheckOptions = {}): Promise<GradCheckResult> {
  const g = new Graph();
  const xs = checkValues(g, inputs);
  const y = build(...xs);
  const rng = new Rng(opts.seed ?? 7);
  const n = y.shape.reduce((a: number, b) => a * (b as number), 1);
  const w = constant(
    g,
    Array.from({ length: n }, () => rng.normal()),
    y.shape as number[],
    y.dtype,
  );
  const loss = reduceSum(mul(y, w), [...Array(y.rank).keys()]);
  const wrtIdx = inputs.map((i, k) => (!i.frozen && (i.wrt ?? (i.dtype === "float32" || i.dtype === "float64")) ? k : -1)).filter((k) => k >= 0);
  const grads = grad(
    loss,
    wrtIdx.map((k) => xs[k]),
  );
  g.output("loss", loss);
  grads.forEach((gr, j) => g.output(`grad_${j}`, gr));
  const session = await compile(g, { threads: 1 });
  const lossOnly = await compile(g, { threads: 1, outputs: ["loss"] });
  try {
    const feeds: Record<string, HostTensor> = {};
    for (const i of inputs) if (!i.frozen) feeds[i.name] = hostTensor(i.dtype, i.shape, toArray(i.dtype, i.data));
    const analytic = await session.run(feeds);
    const f64 = y.dtype === "float64";
    const eps = opts.eps ?? (f64 ? 1e-6 : 1e-2);
    const rtol = opts.rtol ?? (f64 ? 1e-6 : 1e-3);
    const atol = opts.atol ?? (f64 ? 1e-9 : 1e-4);
    let worst = 0;
    const failures: string[] = [];
    for (const [j, k] of wrtIdx.entries()) {
      const data = feeds[inputs[k].name].data as Float32Array | Float64Array;
      const a = analytic[`grad_${j}`].data as Float32Array | Float64Array;
      const max = opts.maxElements ?? 40;
      const stride = Math.max(1, Math.floor(data.length / max));
      for (let e = 0; e < data.length; e += stride) {
        const x0 = data[e];
        data[e] = x0 + eps;
        const lp = Number((await lossOnly.run(feeds)).loss.data[0]);
        data[e] = x0 - eps;
        const lm = Number((await lossOnly.run(feeds)).loss.data[0]);
        data[e] = x0;
        const num = (lp - lm) / (2 * eps);
        const err = Math.abs(a[e] - num) / (atol + rtol * Math.max(Math.abs(a[e]), Math.abs(num)));
        worst = Math.max(worst, err);
        if (err > 1 && failures.length < 5) failures.push(`${inputs[k].name}[${e}]: analytic ${a[e]}, numeric ${num}`);
      }
    }
    return { ok: failures.length === 0, worst, failures };
  } finally {
    session.dispose();
    lossOnly.dispose();
  }
}
