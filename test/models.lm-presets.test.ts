/**
 * Decoder config handling: the presets have the parameter counts their model cards publish, and
 * config fields this code does not implement are errors naming the field. Rotary scaling follows
 * HF's definitions (checked on properties each type promises, not on a copy of the formula).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../src/errors.ts";
import { parseDecoderConfig, checkSequenceLength } from "../src/models/llama/config.ts";
import { inverseFrequencies } from "../src/models/llama/rope.ts";
import { defaultHead } from "../src/models/load.ts";
import { MODEL_PRESETS } from "../src/pipeline/presets.ts";

test("decoder presets have the published parameter counts", () => {
  // safetensors totals of the HF checkpoints (tied embeddings counted once)
  const published: Record<string, number> = {
    "smollm2-135m": 134_515_008,
    "qwen2.5-0.5b": 494_032_768,
    "tinyllama-1.1b": 1_100_048_384,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
  };
  for (const [name, want] of Object.entries(published)) {
    const raw = MODEL_PRESETS[name] as Record<string, unknown>;
    const fam = defaultHead(raw.model_type)!;
    const shapes = fam.parameterShapes(fam.parseConfig(raw, name));
    const total = [...shapes.values()].reduce((a, s) => a + s.reduce((x: number, y: number) => x * y, 1), 0);
    assert.equal(total, want, name);
  }
});

const base = {
  model_type: "llama",
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
};

test("an unknown rope_scaling type, a non-silu activation and a short sliding window are errors naming the field", () => {
  assert.throws(
    () => parseDecoderConfig({ ...base, rope_scaling: { rope_type: "yarn", factor: 4 } }, "cfg.json"),
    (e: Error) => e instanceof ConfigError && /field "rope_scaling" has type "yarn".*supported: default, linear, dynamic, llama3/.test(e.message),
  );
  assert.throws(() => parseDecoderConfig({ ...base, hidden_act: "gelu" }, "cfg.json"), /field "hidden_act" is "gelu"/);
  const mistral = parseDecoderConfig({ ...base, model_type: "mistral", sliding_window: 8 }, "cfg.json");
  assert.throws(() => checkSequenceLength(mistral, 16, "cfg.json"), /field "sliding_window" \(8\) is shorter than the sequence \(16 tokens\).*--max-length 8/);
  checkSequenceLength(mistral, 8);
  // Qwen2 ignores its window unless use_sliding_window is set
  checkSequenceLength(parseDecoderConfig({ ...base, model_type: "qwen2", sliding_window: 8 }, "q"), 16);
  assert.throws(() => checkSequenceLength(parseDecoderConfig({ ...base, model_type: "qwen2", sliding_window: 8, use_sliding_window: true }, "q"), 16));
  assert.throws(() => parseDecoderConfig({ ...base, num_key_value_heads: 3 }, "cfg.json"), /multiple of num_key_value_heads 3/);
});

test("rope scaling: linear divides every frequency, dynamic changes nothing within max_position_embeddings, llama3 keeps short wavelengths and divides long ones", () => {
  const cfg = (rope_scaling: unknown, extra = {}) =>
    parseDecoderConfig({ ...base, hidden_size: 128, num_attention_heads: 2, rope_theta: 500000, rope_scaling, ...extra }, "c");
  const plain = inverseFrequencies(cfg(null), 16);
  assert.equal(plain[0], 1);
  assert.ok(Math.abs(plain[1] - 500000 ** (-2 / 64)) < 1e-15);
  inverseFrequencies(cfg({ type: "linear", factor: 4 }), 16).forEach((f, i) => assert.ok(Math.abs(f - plain[i] / 4) < 1e-15));
  assert.deepEqual(inverseFrequencies(cfg({ type: "dynamic", factor: 2 }), 64), plain);
  const longer = inverseFrequencies(cfg({ type: "dynamic", factor: 2 }), 128);
  assert.equal(longer[0], 1);
  assert.ok(
    longer.slice(1).every((f, i) => f < plain[i + 1]),
    "a longer sequence lowers every frequency but the first",
  );
  const l3 = inverseFrequencies(cfg({ rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 }), 16);
  plain.forEach((f, i) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < 8192 / 4) assert.equal(l3[i], f, `short wavelength ${wavelen} kept`);
    else if (wavelen > 8192) assert.ok(Math.abs(l3[i] - f / 32) < 1e-18, `long wavelength ${wavelen} divided`);
    else assert.ok(l3[i] < f && l3[i] > f / 32, `medium wavelength ${wavelen} blended`);
  });
});
