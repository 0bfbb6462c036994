/**
 * Seeded initialisers with PyTorch's semantics (the official TensLoRA code calls
 * `nn.init.orthogonal_`, `nn.init.kaiming_uniform_(a=√5)` and a TensorLy-style normal init).
 * Results are float32 tensors: they become trainable parameters.
 */
import { ConfigError } from "../errors.ts";
import type { Rng } from "./random.ts";
import { type Dense, sizeOf } from "./dense.ts";
import { qr } from "./linalg.ts";

function checkDims(shape: readonly number[], what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw new ConfigError(`${what}: every dimension must be an integer ≥ 1, got [${shape.join(", ")}]`);
    }
  }
}

/**
 * A [rows, cols] matrix with orthonormal columns when rows ≥ cols, orthonormal rows otherwise
 * (`torch.nn.init.orthogonal_`): QR of a seeded Gaussian matrix (transposed first when it is
 * wide), columns of Q multiplied by sign(diag R) so the draw is Haar-distributed rather than
 * biased by the QR routine's sign choice, then scaled by `gain`.
 */
export function orthogonal(rng: Rng, rows: number, cols: number, gain = 1): Dense {
  checkDims([rows, cols], "orthogonal");
  const g = new Float64Array(rows * cols);
  for (let i = 0; i < g.length; i++) g[i] = rng.normal();
  const wide = rows < cols;
  const m = wide ? cols : rows;
  const n = wide ? rows : cols;
  let x = g;
  if (wide) {
    x = new Float64Array(m * n);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) x[j * n + i] = g[i * cols + j];
  }
  const { q, r } = qr({ shape: [m, n], data: x });
  const sign = new Float64Array(n);
  for (let j = 0; j < n; j++) sign[j] = r.data[j * n + j] < 0 ? -1 : 1; // sign(0) taken as +1
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const v = gain * sign[j] * q.data[i * n + j];
      if (wide) out[j * cols + i] = v;
      else out[i * cols + j] = v;
    }
  }
  return { shape: [rows, cols], data: out };
}

/** Entries drawn from N(0, std²); `shape` may be a length. */
export function normal(rng: Rng, shape: number | readonly number[], std = 1): Dense {
  const s = typeof shape === "number" ? [shape] : [...shape];
  checkDims(s, "normal");
  if (!(std >= 0)) throw new ConfigError(`normal: std must be ≥ 0, got ${std}`);
  const data = new Float32Array(sizeOf(s));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  return { shape: s, data };
}

/**
 * U(−bound, bound) with PyTorch's `kaiming_uniform_` bound = gain·√(3 / fanIn),
 * gain = √(2 / (1 + a²)). The default a = √5 (LoRA's `lora_A`) gives bound = 1/√fanIn.
 * `fanIn` is explicit because PyTorch reads it from `weight.size(1)`: for LoRA's A [r, d_in]
 * that is d_in, for a Tucker factor [I_n, r_n] it is r_n.
 */
export function kaimingUniform(rng: Rng, shape: readonly number[], fanIn: number, a = Math.sqrt(5)): Dense {
  checkDims(shape, "kaimingUniform");
  if (!Number.isInteger(fanIn) || fanIn < 1) throw new ConfigError(`kaimingUniform: fanIn must be an integer ≥ 1, got ${fanIn}`);
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = gain * Math.sqrt(3 / fanIn);
  const data = new Float32Array(sizeOf(shape));
  for (let i = 0; i < data.length; i++) data[i] = (2 * rng.uniform() - 1) * bound;
  return { shape: [...shape], data };
}

/**
 * Standard deviation of every factor and of the core for tltorch's Tucker `normal_` init, chosen
 * so the reconstructed tensor has std ≈ `std`: (std / Π_n √r_n)^(1/(N+1)).
 */
export function tuckerNormalStd(ranks: readonly number[], std = 1): number {
  let root = 1;
  for (const r of ranks) root *= Math.sqrt(r);
  return (std / root) ** (1 / (ranks.length + 1));
}
