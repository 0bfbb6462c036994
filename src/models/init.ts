/**
 * A model with freshly initialised weights, as HuggingFace's `_init_weights` does it: linear and
 * embedding weights ~ N(0, initializer_range²), biases 0, LayerNorm / RMSNorm weight 1 and bias 0; ViT's
 * CLS token and position embeddings (truncated normal in HF; plain normal here) alike.
 */
import { Rng } from "../tensor/random.ts";
import type { WeightMap } from "../nn/params.ts";
import { type AnyFamily, type LoadedModel, familyOf } from "./assemble.ts";

/** A model with seeded random weights for a config: for tests, benchmarks and pretraining from scratch. */
export function randomModel(rawConfig: Record<string, unknown>, seed = 0, dir = "<random>"): LoadedModel {
  const family: AnyFamily = familyOf(rawConfig, dir);
  const config = family.parseConfig(rawConfig, dir);
  const std = typeof rawConfig.initializer_range === "number" ? rawConfig.initializer_range : 0.02;
  const rng = new Rng(seed);
  const weights: WeightMap = new Map();
  for (const [name, shape] of family.parameterShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = /(norm|LayerNorm)[^.]*\.weight$/.test(name);
    const isBias = name.endsWith(".bias");
    const data = isNorm ? new Float32Array(n).fill(1) : isBias ? new Float32Array(n) : rng.normalArray(n, std);
    weights.set(name, { shape, data });
  }
  return { family, config, weights, dir, rawConfig, newHead: true };
}
