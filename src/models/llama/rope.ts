/**
 * Rotary embedding tables as HuggingFace's `ROPE_INIT_FUNCTIONS` compute them: inverse
 * frequencies θ^(−2i/dh), adjusted by the config's rope_scaling (linear: ÷ factor; dynamic NTK:
 * a larger base once the sequence outgrows max_position_embeddings; llama3: long wavelengths ÷
 * factor, short ones kept, a smooth blend between), then cos and sin of position · frequency for
 * positions 0…T−1, each half repeated ([T, dh]).
 */
import type { DecoderConfig } from "./config.ts";

export function inverseFrequencies(cfg: Pick<DecoderConfig, "headDim" | "ropeTheta" | "ropeScaling" | "maxPositionEmbeddings">, seqLen: number): Float64Array {
  const dh = cfg.headDim;
  const s = cfg.ropeScaling;
  let base = cfg.ropeTheta;
  if (s.type === "dynamic" && seqLen > cfg.maxPositionEmbeddings) {
    base *= ((s.factor * seqLen) / cfg.maxPositionEmbeddings - (s.factor - 1)) ** (dh / (dh - 2));
  }
  const inv = Float64Array.from({ length: dh / 2 }, (_, i) => 1 / base ** ((2 * i) / dh));
  if (s.type === "linear") return inv.map((f) => f / s.factor);
  if (s.type !== "llama3") return inv;
  const old = s.originalMaxPositionEmbeddings;
  const lowWavelen = old / s.lowFreqFactor;
  const highWavelen = old / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (old / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos and sin tables [T, dh], row-major, for positions 0…T−1. */
export function rotaryTables(cfg: Parameters<typeof inverseFrequencies>[0], seqLen: number): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(cfg, seqLen);
  const dh = cfg.headDim;
  const half = dh / 2;
  const cos = new Float32Array(seqLen * dh);
  const sin = new Float32Array(seqLen * dh);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < half; i++) {
      const a = inv[i] * t;
      cos[t * dh + i] = cos[t * dh + half + i] = Math.cos(a);
      sin[t * dh + i] = sin[t * dh + half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}
