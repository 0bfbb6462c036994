/**
 * The next token from one row of logits, as HuggingFace's generate processes them: repetition
 * penalty (CTRL: a seen token's logit divided by the penalty when positive, multiplied when
 * negative), then temperature, top-k and top-p (nucleus: the smallest set of most likely tokens
 * whose probability reaches p) filtering, then a draw from a seeded stream. Without sampling,
 * or at temperature 0, the arg-max (greedy).
 */
import { ConfigError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";

/** How the next token is drawn: greedy, or temperature with top-k / top-p and a seed. */
export interface SamplingOptions {
  /** Draw from the distribution (default false: greedy). */
  doSample?: boolean;
  /** Logits are divided by it before sampling (default 1; 0 means greedy). */
  temperature?: number;
  /** Keep the k most likely tokens (default 0: all). */
  topK?: number;
  /** Keep the most likely tokens whose probabilities sum to at least p (default 1: all). */
  topP?: number;
  /** > 1 discourages tokens already in the prompt or output (default 1: none). */
  repetitionPenalty?: number;
  /** Seed of the sampling stream (default 0), so a run repeats. */
  seed?: number;
}

/** Checked once at the boundary. */
export function checkSampling(o: SamplingOptions): Required<SamplingOptions> {
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const r: Required<SamplingOptions> = { doSample: false, temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0, ...given };
  if (!(r.temperature >= 0) || !Number.isFinite(r.temperature)) throw new ConfigError(`temperature ${r.temperature} must be a finite number ≥ 0`);
  if (!Number.isInteger(r.topK) || r.topK < 0) throw new ConfigError(`top-k ${r.topK} must be an integer ≥ 0 (0 keeps every token)`);
  if (!(r.topP > 0 && r.topP <= 1)) throw new ConfigError(`top-p ${r.topP} must lie in (0, 1]`);
  if (!(r.repetitionPenalty > 0) || !Number.isFinite(r.repetitionPenalty))
    throw new ConfigError(`repetition penalty ${r.repetitionPenalty} must be a finite number > 0 (1 means none)`);
  if (!Number.isInteger(r.seed)) throw new ConfigError(`seed ${r.seed} must be an integer`);
  return r;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** A token sampler for one row of a batch; each row draws from its own stream. */
export class TokenSampler {
  readonly #o: Required<SamplingOptions>;
  readonly #rng: Rng;

  constructor(opts: SamplingOptions, row = 0) {
    this.#o = checkSampling(opts);
    this.#rng = new Rng(this.#o.seed).fork(row);
  }

  /** `seen`: the row's prompt and output tokens so far (for the repetition penalty). */
  next(logits: Float32Array, seen: Iterable<number>): number {
    const o = this.#o;
    const x = Float64Array.from(logits);
    if (o.repetitionPenalty !== 1) {
      for (const t of new Set(seen)) x[t] = x[t] < 0 ? x[t] * o.repetitionPenalty : x[t] / o.repetitionPenalty;
    }
    if (!o.doSample || o.temperature === 0) return argmax(x);
    for (let i = 0; i < x.length; i++) x[i] /= o.temperature;
    const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a]);
    let keep = o.topK > 0 ? Math.min(o.topK, order.length) : order.length;
    const max = x[order[0]];
    const p = order.slice(0, keep).map((i) => Math.exp(x[i] - max));
    let total = p.reduce((a, b) => a + b, 0);
    if (o.topP < 1) {
      let cum = 0;
      for (let j = 0; j < keep; j++) {
        cum += p[j] / total;
        if (cum >= o.topP) {
          keep = j + 1;
          break;
        }
      }
      total = p.slice(0, keep).reduce((a, b) => a + b, 0);
    }
    let u = this.#rng.uniform() * total;
    for (let j = 0; j < keep; j++) {
      u -= p[j];
      if (u < 0) return order[j];
    }
    return order[keep - 1];
  }
}
