/**
 * Generation with decoder LMs: greedy tokens with the KV cache equal those of full recomputation
 * (the same step graph with an empty cache), those of the fixed-shape forward graphs (one per
 * length: constant RoPE tables and causal mask, an independent path) and the fixtures' greedy
 * continuations (float64 PyTorch). Left-padded batches give each row what it gets alone.
 * Sampling follows its definitions (top-k, top-p, repetition penalty, temperature 1 = softmax)
 * and repeats with a seed. `tenslora generate` prints the same tokens, with and without an adapter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LmTokenizer } from "../src/data/lm-data.ts";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { Generator, type GenerateOptions } from "../src/generate/generate.ts";
import { TokenSampler, argmax } from "../src/generate/sampling.ts";
import { generateText } from "../src/generate/text.ts";
import { toBigInt64 } from "../src/io/dtype-convert.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import { assertOk, cliAsync } from "./cli-helpers.ts";
import { tempDir } from "./make-data.ts";
import { floatWeights, withBaseDType } from "../src/models/quantize-base.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const LM = "test/fixtures/hf-tiny-lm";
const LLAMA = join(LM, "llama");
const LLAMA_LORA = join(LM, "llama_lora");

function fixtureGreedy(name: string): { prompt: number[]; greedy: number[] } {
  const g = readSafetensors(join(LM, `${name}_base_golden.safetensors`)).tensors;
  return { prompt: Array.from(toBigInt64(g.get("prompt_ids")!), Number), greedy: Array.from(toBigInt64(g.get("greedy_ids")!), Number) };
}

async function collect(gen: Generator, prompts: number[][], opts: GenerateOptions): Promise<number[][]> {
  const out: number[][] = prompts.map(() => []);
  for await (const step of gen.tokens(prompts, opts)) step.forEach((t, r) => t !== undefined && out[r].push(t));
  return out;
}

/** Greedy decoding by the fixed-shape forward graph, rebuilt at every length. */
async function greedyByForward(tm: ReturnType<typeof loadTrainedModel>, prompt: number[], n: number): Promise<number[]> {
  const seq = [...prompt];
  const V = (tm.model.config as { vocabSize: number }).vocabSize;
  for (let i = 0; i < n; i++) {
    const ids = { dtype: "int64" as const, shape: [1, seq.length], data: BigInt64Array.from(seq.map(BigInt)) };
    const logits = (await runInference(tm, { input_ids: ids }, { runtime: nodeRuntime, threads: 1 })).logits.data as Float32Array;
    seq.push(argmax(logits.subarray((seq.length - 1) * V, seq.length * V)));
  }
  return seq.slice(prompt.length);
}

const GREEDY: GenerateOptions = { maxNewTokens: 6, eosTokenIds: [] };

for (const name of ["llama", "qwen2"]) {
  test(`${name}: greedy with the KV cache = full recomputation = per-length forward graphs = the fixture's continuation; batches are left-padded`, async () => {
    const { prompt, greedy } = fixtureGreedy(name);
    const tm = loadTrainedModel(join(LM, name));
    const gen = await Generator.create(tm.model, undefined, { runtime: nodeRuntime, threads: 1 });
    try {
      const [cached] = await collect(gen, [prompt], GREEDY);
      assert.deepEqual(cached, greedy, "KV cache vs the fixture");
      assert.deepEqual((await collect(gen, [prompt], { ...GREEDY, cache: false }))[0], greedy, "full recomputation vs the fixture");
      assert.deepEqual(await greedyByForward(tm, prompt, 6), greedy, "fixed-shape forward graphs vs the fixture");
      // a batch of a long and a short prompt: each row as alone (the short one is left-padded by 3)
      const short = prompt.slice(3);
      const alone = (await collect(gen, [short], GREEDY))[0];
      assert.deepEqual(await collect(gen, [prompt, short], GREEDY), [greedy, alone], "left-padded batch");
      assert.deepEqual(await collect(gen, [short, prompt], { ...GREEDY, cache: false }), [alone, greedy], "left-padded batch, recomputed");
    } finally {
      gen.dispose();
    }
  });
}

test("llama on an int8 base: greedy with the KV cache (a free row count: x · Ŵᵀ on the codes' nibbles) = the float32 model holding the dequantized weights", async () => {
  const { prompt } = fixtureGreedy("llama");
  const q = withBaseDType(loadTrainedModel(LLAMA).model, "int8");
  const tokens = async (model: typeof q) => {
    const gen = await Generator.create(model, undefined, { runtime: nodeRuntime, threads: 1 });
    try {
      return await collect(gen, [prompt, prompt.slice(3)], GREEDY);
    } finally {
      gen.dispose();
    }
  };
  assert.deepEqual(await tokens(q), await tokens({ ...q, weights: floatWeights(q), quantized: undefined, baseDtype: undefined }));
});

test("dynamic NTK rope scaling generates as unscaled RoPE within max_position_embeddings, as in HF: the fixture's continuation", async () => {
  const { prompt, greedy } = fixtureGreedy("llama");
  const dir = tempDir("gen-dynamic-");
  cpSync(LLAMA, dir, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(LLAMA, "config.json"), "utf8"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...cfg, rope_scaling: { rope_type: "dynamic", factor: 4 } }));
  const gen = await Generator.create(loadTrainedModel(dir).model, undefined, { runtime: nodeRuntime, threads: 1 });
  try {
    assert.deepEqual((await collect(gen, [prompt], GREEDY))[0], greedy);
  } finally {
    gen.dispose();
  }
});

test("llama with a PEFT LoRA adapter: cache = recomputation = forward graphs with the adapter, and not the base model's tokens", async () => {
  const { prompt, greedy } = fixtureGreedy("llama");
  const tm = loadTrainedModel(LLAMA, LLAMA_LORA);
  assert.ok(tm.adapter, "the adapter is applied unmerged");
  const gen = await Generator.create(tm.model, tm.adapter, { runtime: nodeRuntime, threads: 1 });
  try {
    const [cached] = await collect(gen, [prompt], GREEDY);
    assert.deepEqual((await collect(gen, [prompt], { ...GREEDY, cache: false }))[0], cached);
    assert.deepEqual(await greedyByForward(tm, prompt, 6), cached);
    assert.notDeepEqual(cached, greedy, "the adapter changes the continuation");
  } finally {
    gen.dispose();
  }
});

test("sampling: top-k, top-p and the repetition penalty keep what their definitions keep; temperature 1 draws from the softmax; a seed repeats", async () => {
  const logits = Float32Array.from([2, 1, 0.5, -1, 0]);
  const p = Array.from(logits, Math.exp);
  const z = p.reduce((a, b) => a + b, 0);
  const probs = p.map((v) => v / z);
  const draws = (opts: ConstructorParameters<typeof TokenSampler>[0], n = 4000, seen: number[] = []) => {
    const s = new TokenSampler({ doSample: true, ...opts });
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < n; i++) counts[s.next(logits, seen)]++;
    return counts.map((c) => c / n);
  };
  draws({ seed: 1 }).forEach((f, i) => assert.ok(Math.abs(f - probs[i]) < 0.03, `token ${i}: frequency ${f} vs softmax ${probs[i]}`));
  assert.deepEqual(
    draws({ seed: 2, topK: 2 }).map((f) => f > 0),
    [true, true, false, false, false],
    "top-k 2",
  );
  // probabilities ≈ .55 .20 .12 .03 .07: top-p 0.7 keeps the two best (.75 ≥ .7), 0.8 adds the third
  assert.deepEqual(
    draws({ seed: 3, topP: 0.7 }).map((f) => f > 0),
    [true, true, false, false, false],
    "top-p 0.7",
  );
  assert.deepEqual(
    draws({ seed: 3, topP: 0.8 }).map((f) => f > 0),
    [true, true, true, false, false],
    "top-p 0.8",
  );
  assert.deepEqual(draws({ seed: 4, temperature: 0 }), [1, 0, 0, 0, 0], "temperature 0 is greedy");
  // penalty 4 on token 0: 2/4 = 0.5 < 1, so greedy picks token 1
  const greedyPenalised = new TokenSampler({ repetitionPenalty: 4 });
  assert.equal(greedyPenalised.next(logits, [0]), 1);
  assert.equal(greedyPenalised.next(Float32Array.from([-1, -2]), [0]), 1, "a negative logit is multiplied: -1·4 = -4 < -2");
  const tm = loadTrainedModel(LLAMA);
  const gen = await Generator.create(tm.model, undefined, { runtime: nodeRuntime, threads: 1 });
  try {
    const { prompt } = fixtureGreedy("llama");
    const sample = (seed: number) => collect(gen, [prompt], { maxNewTokens: 8, eosTokenIds: [], doSample: true, seed });
    assert.deepEqual(await sample(7), await sample(7), "the same seed repeats");
    assert.notDeepEqual(await sample(7), await sample(8), "another seed draws otherwise");
  } finally {
    gen.dispose();
  }
});

test("generateText streams decoded text and stops at a stop string or an end token", async () => {
  const tm = loadTrainedModel(LLAMA);
  const tok = new LmTokenizer(LLAMA);
  const gen = await Generator.create(tm.model, undefined, { runtime: nodeRuntime, threads: 1 });
  try {
    const { prompt, greedy } = fixtureGreedy("llama");
    const text = tok.tok.decode(prompt, false);
    const run = async (opts: Parameters<typeof generateText>[3]) => {
      let out = "";
      let deltas = 0;
      for await (const d of generateText(gen, tok, [text], opts)) {
        out += d.text;
        deltas++;
      }
      return { out, deltas };
    };
    const all = await run({ maxNewTokens: 6, eosTokenIds: [] });
    assert.equal(all.out, tok.tok.decode(greedy));
    assert.equal(all.deltas, 6, "one piece of text per token");
    const third = tok.tok.decode([greedy[2]]);
    assert.equal((await run({ maxNewTokens: 6, eosTokenIds: [], stopStrings: [third] })).out, tok.tok.decode(greedy.slice(0, 3)), "ends with the stop string");
    // a stop string ending inside a token ends the row after that whole token, as transformers' stop_strings do
    const upToFourth = tok.tok.decode(greedy.slice(0, 4));
    const inside = upToFourth.slice(tok.tok.decode(greedy.slice(0, 3)).length - 1, -1); // "6 w9": from token 3 into token 4
    assert.ok(inside.length > 1 && !tok.tok.decode(greedy.slice(0, 3)).includes(inside), JSON.stringify(inside));
    assert.equal((await run({ maxNewTokens: 6, eosTokenIds: [], stopStrings: [inside] })).out, upToFourth, "never cut inside a token");
    assert.equal(
      (await run({ maxNewTokens: 6, eosTokenIds: [greedy[1]] })).out,
      tok.tok.decode(greedy.slice(0, 1)),
      "an end token ends the row and is not shown",
    );
  } finally {
    gen.dispose();
  }
});

test("tenslora generate prints the fixture's greedy continuation, the adapter's, and a chat reply sampled with --seed as the library samples it", async () => {
  const { prompt, greedy } = fixtureGreedy("llama");
  const tok = new LmTokenizer(LLAMA);
  const text = tok.tok.decode(prompt, false);
  const run = async (...args: string[]) => {
    const r = await cliAsync(["generate", "--model", LLAMA, "--max-new-tokens", "6", "--threads", "1", ...args]);
    assertOk(r, `generate ${args.join(" ")}`);
    return r.stdout.trim();
  };
  const chat = join(tempDir(), "chat.json");
  const messages = [{ role: "user", content: text }];
  writeFileSync(chat, JSON.stringify(messages));
  const [base, adapted, sampled] = await Promise.all([
    run("--prompt", text),
    run("--adapter", LLAMA_LORA, "--prompt", text),
    run("--messages", chat, "--temperature", "1", "--seed", "3", "--json"),
  ]);
  assert.equal(base, tok.tok.decode(greedy));
  assert.equal(adapted, tok.tok.decode(await greedyByForward(loadTrainedModel(LLAMA, LLAMA_LORA), prompt, 6)));
  const reply = JSON.parse(sampled);
  assert.equal(reply.prompt, tok.renderChat(messages, true));
  const gen = await Generator.create(loadTrainedModel(LLAMA).model, undefined, { runtime: nodeRuntime, threads: 1 });
  try {
    let expected = "";
    for await (const d of generateText(gen, tok, [reply.prompt], { maxNewTokens: 6, doSample: true, temperature: 1, seed: 3 })) expected += d.text;
    assert.equal(reply.text, expected, "--seed 3 draws what the library draws with seed 3");
  } finally {
    gen.dispose();
  }
});
