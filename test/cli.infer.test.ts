/**
 * `tenslora infer`: the parity command against the HuggingFace reference outputs (tiny ViT and
 * RoBERTa, with and without PEFT's LoRA adapters), the PEFT load → save → load round trip, and
 * the label printing for image files and texts checked against independently built inputs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { saveAdapter } from "../src/adapters/format.ts";
import { loadTrainedModel, runInference } from "../src/experiments/infer.ts";
import { toBigInt64, toFloat32 } from "../src/io/dtype-convert.ts";
import { type TensorEntry, readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { modelContext } from "../src/pipeline/context.ts";
import { Rng } from "../src/tensor/random.ts";
import { assertOk, cli, cliAsync } from "./cli-helpers.ts";
import { FIXTURES, NEUTRAL, POSITIVE, ROBERTA, VIT, classImage, robertaWithTokenizer, tempDir, writePng } from "./make-data.ts";
import { nodeRuntime } from "../src/runtime/session.ts";

const golden = (name: string) => readSafetensors(join(FIXTURES, `${name}.safetensors`)).tensors;
const f32 = (name: string, key: string) => toFloat32(golden(name).get(key)!, key);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

const readOut = (path: string) => {
  const t = readSafetensors(path).tensors;
  for (const k of ["logits", "last_hidden_state"]) assert.equal(t.get(k)?.dtype, "F32", `${k} is written as F32`);
  return {
    logits: toFloat32(t.get("logits")!),
    hidden: toFloat32(t.get("last_hidden_state")!),
    shapes: [t.get("logits")!.shape, t.get("last_hidden_state")!.shape],
  };
};

test("infer on the golden inputs reproduces HuggingFace's logits (and hidden state), with and without PEFT LoRA", async () => {
  const dir = tempDir();
  const cases = [
    { model: "vit", adapter: undefined, ref: "vit_base_golden" },
    { model: "vit", adapter: "vit_lora", ref: "vit_lora_golden" },
    { model: "roberta", adapter: undefined, ref: "roberta_base_golden" },
    { model: "roberta", adapter: "roberta_lora", ref: "roberta_lora_golden" },
  ];
  // two at a time: the machine has two cores
  const results = [];
  for (let i = 0; i < cases.length; i += 2) {
    results.push(
      ...(await Promise.all(
        cases.slice(i, i + 2).map((c, j) => {
          const out = join(dir, `out${i + j}.safetensors`);
          const args = [
            "infer",
            "--model",
            join(FIXTURES, c.model),
            "--inputs",
            join(FIXTURES, `${c.model}_base_golden.safetensors`),
            "--output",
            out,
            "--threads",
            "1",
          ];
          if (c.adapter) args.push("--adapter", join(FIXTURES, c.adapter));
          return cliAsync(args).then((r) => ({ r, out, c }));
        }),
      )),
    );
  }
  for (const { r, out, c } of results) {
    const what = `${c.model}${c.adapter ? " + " + c.adapter : ""}`;
    assertOk(r, what);
    const got = readOut(out);
    const ref = f32(c.ref, "logits");
    assert.deepEqual(got.shapes[0], golden(c.ref).get("logits")!.shape, `${what}: logits shape`);
    assert.ok(maxAbsDiff(got.logits, ref) < 1e-4, `${what}: logits differ by ${maxAbsDiff(got.logits, ref)}`);
    if (!c.adapter) {
      const h = f32(c.ref, "last_hidden_state");
      assert.ok(maxAbsDiff(got.hidden, h) < 1e-4, `${what}: last_hidden_state differs by ${maxAbsDiff(got.hidden, h)}`);
    }
  }
  // the adapter matters: LoRA logits are not the base logits
  assert.ok(maxAbsDiff(f32("vit_lora_golden", "logits"), f32("vit_base_golden", "logits")) > 1e-3);
});

test("a PEFT adapter loaded, saved in our format and loaded again gives identical logits", async () => {
  for (const [model, adapter, ref] of [
    [VIT, "vit_lora", "vit_base_golden"],
    [ROBERTA, "roberta_lora", "roberta_base_golden"],
  ] as const) {
    const first = loadTrainedModel(model, join(FIXTURES, adapter));
    assert.ok(first.adapter, "the PEFT folder loads as an adapter");
    const dir = tempDir();
    saveAdapter(dir, first.adapter, modelContext(first.model));
    // PEFT's config fields and key names survive the round trip
    const cfgIn = JSON.parse(readFileSync(join(FIXTURES, adapter, "adapter_config.json"), "utf8"));
    const cfgOut = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    for (const k of ["peft_type", "r", "lora_alpha", "use_rslora"]) assert.deepEqual(cfgOut[k], cfgIn[k], `${adapter}: ${k}`);
    assert.deepEqual([...cfgOut.target_modules].sort(), [...cfgIn.target_modules].sort());
    const tIn = readSafetensors(join(FIXTURES, adapter, "adapter_model.safetensors")).tensors;
    const tOut = readSafetensors(join(dir, "adapter_model.safetensors")).tensors;
    assert.deepEqual([...tOut.keys()].sort(), [...tIn.keys()].sort(), `${adapter}: same tensor names`);
    for (const [k, e] of tIn) assert.deepEqual(toFloat32(tOut.get(k)!), toFloat32(e), `${adapter}: ${k} bit-identical`);

    const second = loadTrainedModel(model, dir);
    const inputs = Object.fromEntries(
      [...golden(ref)].filter(([k]) => ["pixel_values", "input_ids", "attention_mask"].includes(k)).map(([k, e]) => [k, readInput(k, e)]),
    );
    const a = await runInference(first, inputs, { runtime: nodeRuntime, threads: 1 });
    const b = await runInference(second, inputs, { runtime: nodeRuntime, threads: 1 });
    assert.deepEqual(b.logits.data, a.logits.data, `${adapter}: logits bit-identical after the round trip`);
    assert.deepEqual(b.last_hidden_state.data, a.last_hidden_state.data);
  }
});

function readInput(k: string, e: TensorEntry): HostTensor {
  return k === "pixel_values" ? { dtype: "float32", shape: e.shape, data: toFloat32(e) } : { dtype: "int64", shape: e.shape, data: toBigInt64(e) };
}

test("--images prints labels with probabilities that sum to 1 and match the logits of the same pixels", async () => {
  const dir = tempDir();
  const rng = new Rng(7);
  const paths: string[] = [];
  const pixels: Uint8Array[] = [];
  for (let i = 0; i < 2; i++) {
    const px = classImage(i, 32, rng); // the model's own size: no resampling
    pixels.push(px);
    paths.push(join(dir, `img${i}.png`));
    await writePng(paths[i], px, 32);
  }
  // the same pixels normalised by hand as the ViT defaults say ((x/255 − 0.5) / 0.5), in CHW order
  const plane = 32 * 32;
  const pv = new Float32Array(2 * 3 * plane);
  pixels.forEach((px, n) => {
    for (let c = 0; c < 3; c++) for (let p = 0; p < plane; p++) pv[n * 3 * plane + c * plane + p] = (px[p * 3 + c] / 255 - 0.5) / 0.5;
  });
  // sanity: the PNG decodes to exactly these pixels
  const back = await sharp(paths[0]).raw().toBuffer();
  assert.deepEqual(new Uint8Array(back), pixels[0]);
  writeSafetensors(join(dir, "in.safetensors"), { pixel_values: { dtype: "F32", shape: [2, 3, 32, 32], data: pv } });

  const adapter = join(FIXTURES, "vit_lora");
  const [img, raw] = await Promise.all([
    cliAsync(["infer", "--model", VIT, "--adapter", adapter, "--images", ...paths, "--json", "--threads", "1"]),
    cliAsync([
      "infer",
      "--model",
      VIT,
      "--adapter",
      adapter,
      "--inputs",
      join(dir, "in.safetensors"),
      "--output",
      join(dir, "out.safetensors"),
      "--threads",
      "1",
    ]),
  ]);
  assertOk(img, "infer --images");
  assertOk(raw, "infer --inputs");
  const logits = readOut(join(dir, "out.safetensors")).logits;
  const labels = Object.values(JSON.parse(readFileSync(join(VIT, "config.json"), "utf8")).id2label) as string[];
  const lines = img.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2, "one line per image");
  lines.forEach((line, n) => {
    assert.equal(line.input, paths[n]);
    assert.ok(labels.includes(line.label), `label ${line.label} is one of id2label`);
    const probs = line.probabilities as { id: number; label: string; probability: number }[];
    assert.equal(probs.length, labels.length);
    assert.ok(Math.abs(probs.reduce((a, p) => a + p.probability, 0) - 1) < 1e-9, "probabilities sum to 1");
    assert.equal(probs[0].label, line.label, "the printed label is the most probable");
    // softmax of the logits computed from the hand-normalised pixels
    const row = Array.from(logits.subarray(n * 5, n * 5 + 5));
    const z = row.reduce((a, v) => a + Math.exp(v), 0);
    for (const p of probs) {
      assert.equal(p.label, labels[p.id]);
      assert.ok(Math.abs(p.probability - Math.exp(row[p.id]) / z) < 1e-5, `${paths[n]} ${p.label}: ${p.probability} vs ${Math.exp(row[p.id]) / z}`);
    }
  });
  // the human-readable form names the file and the labels with percentages
  const human = cli(["infer", "--model", VIT, "--images", paths[0], "--top", "2", "--threads", "1"]);
  assertOk(human, "infer --images (table)");
  assert.match(human.stdout, new RegExp(`^${paths[0].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: LABEL_\\d \\d+\\.\\d\\d%, LABEL_\\d \\d+\\.\\d\\d%$`, "m"));
});

test("--text tokenises through the folder's tokenizer.json: same probabilities as hand-made input ids", async () => {
  const dir = tempDir();
  const model = robertaWithTokenizer(join(dir, "roberta"));
  // ids from the hand-made vocabulary: <s>=0, </s>=2, words from 4 in NEUTRAL, POSITIVE order
  const id = (w: string) => 4 + [...NEUTRAL, ...POSITIVE].indexOf(w);
  const ids = [0, id("the"), id("movie"), id("good"), 2, 2, id("very"), id("nice"), 2];
  writeSafetensors(join(dir, "in.safetensors"), {
    input_ids: { dtype: "I64", shape: [1, ids.length], data: BigInt64Array.from(ids.map(BigInt)) },
    attention_mask: { dtype: "I64", shape: [1, ids.length], data: new BigInt64Array(ids.length).fill(1n) },
    // RobertaProcessing marks the second segment with type 1, and this checkpoint has 2 types
    token_type_ids: { dtype: "I64", shape: [1, ids.length], data: BigInt64Array.from(ids.map((_, i) => (i >= 5 ? 1n : 0n))) },
  });
  const [txt, raw] = await Promise.all([
    cliAsync(["infer", "--model", model, "--text", "the movie good", "--text-pair", "very nice", "--json", "--threads", "1"]),
    cliAsync(["infer", "--model", model, "--inputs", join(dir, "in.safetensors"), "--output", join(dir, "out.safetensors"), "--threads", "1"]),
  ]);
  assertOk(txt, "infer --text");
  assertOk(raw, "infer --inputs");
  const logits = readOut(join(dir, "out.safetensors")).logits;
  const line = JSON.parse(txt.stdout.trim());
  assert.equal(line.input, "the movie good | very nice");
  const z = Array.from(logits).reduce((a, v) => a + Math.exp(v), 0);
  for (const p of line.probabilities) assert.ok(Math.abs(p.probability - Math.exp(logits[p.id]) / z) < 1e-5, `${p.label}`);
});
