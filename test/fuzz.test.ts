/**
 * Property-based fuzzing (fast-check) of every parser a user can feed: safetensors, model
 * config.json, checkpoint folders, a run's config.json, tokenizer files, CSV/TSV/JSONL rows and
 * image files. Inputs are random and mutated valid ones (lying sizes and offsets, huge numbers,
 * wrong types, truncation, a 60000×60000 image header). Every outcome must be a result or one of
 * the project's typed errors, each case within a time bound and the whole run within a memory
 * bound. Each parser runs up to FUZZ_RUNS cases (default 10,000) or FUZZ_SECONDS (default 12 s),
 * whichever ends first, and prints how many it ran.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import sharp from "sharp";
import { TensLoRAError } from "../src/errors.ts";
import { parseSafetensors, serializeSafetensors } from "../src/io/safetensors.ts";
import { toFloat32 } from "../src/io/dtype-convert.ts";
import { parseViTConfig } from "../src/models/vit/config.ts";
import { parseRobertaConfig } from "../src/models/roberta/config.ts";
import { checkpointFrom, saveCheckpoint } from "../src/train/checkpoint.ts";
import { DEFAULTS, applyConfig, parseRanks } from "../src/experiments/run-config.ts";
import { trainConfig } from "../src/experiments/run.ts";
import { TextTokenizer } from "../src/data/tokenize.ts";
import { parseCsv } from "../src/data/csv.ts";
import { readGlueTsv, readTextTable } from "../src/data/text-datasets.ts";
import { ImageProcessor } from "../src/data/image-preprocess.ts";
import { ChatTemplate, TemplateSandbox } from "../src/data/chat-template.ts";
import { budgetLabel } from "../src/experiments/arms.ts";
import { runDir } from "../src/experiments/compare.ts";
import { type RunJob, jobId, parseRunJob } from "../src/sweep/jobs.ts";
import { serveStudio } from "../studio/serve.ts";
import { rawGet } from "./raw-get.ts";
import { VIT, ROBERTA, pngClaiming, tempDir, tokenizerJson } from "./make-data.ts";
import { readFileSync } from "node:fs";

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 12);
/** A single case may not take longer than this (a hang or a huge allocation shows up here). */
const CASE_MS = 2_000;
/** Nor may the fuzz run as a whole grow the process by more than this. */
const RSS_GROWTH = 768 * 2 ** 20;
const dir = tempDir("tenslora-fuzz-");

/** Run `body`; a TensLoRAError is an accepted outcome, anything else (or a slow case) fails. */
async function typedOnly(body: () => unknown, caseMs = CASE_MS): Promise<boolean> {
  const t0 = performance.now();
  try {
    await body();
  } catch (e) {
    if (!(e instanceof TensLoRAError)) throw e;
  }
  const ms = performance.now() - t0;
  if (ms > caseMs) throw new Error(`case took ${ms.toFixed(0)} ms`);
  return true;
}

async function fuzz<T>(name: string, arb: fc.Arbitrary<T>, body: (x: T) => unknown, caseMs = CASE_MS): Promise<void> {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const out = await fc.check(
    fc.asyncProperty(arb, (x) => typedOnly(() => body(x), caseMs)),
    { numRuns: RUNS, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, seed: Number(process.env.FUZZ_SEED ?? 4242) },
  );
  const grew = process.memoryUsage().rss - rss0;
  console.log(
    `# fuzz ${name}: ${out.numRuns} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s${out.interrupted ? " (time limit)" : ""}, RSS ${grew < 0 ? "−" : "+"}${Math.abs(grew / 2 ** 20).toFixed(0)} MiB`,
  );
  if (out.failed) assert.fail(`${name}: ${fc.defaultReportMessage(out)}`);
  assert.ok(grew < RSS_GROWTH, `${name}: RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB`);
}

/** Values that break parsers: wrong types, huge and negative numbers, empty things. */
const weird = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(-1, 0, 1, 1e9, 1e12, 2 ** 53, -(2 ** 31), 0.5, 1e-300, "", "1", "0x10", null, [], {}, true),
  fc.integer(),
  fc.double(),
);

/** `base` with some fields replaced by weird values, some deleted, some added. */
function mutated(base: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(base);
  return fc
    .tuple(
      fc.dictionary(fc.constantFrom(...keys), weird, { maxKeys: 4 }),
      fc.subarray(keys, { maxLength: 2 }),
      fc.dictionary(fc.string({ maxLength: 6 }), weird, { maxKeys: 2 }),
    )
    .map(([changed, removed, added]) => {
      const out: Record<string, unknown> = { ...base, ...added, ...changed };
      for (const k of removed) delete out[k];
      return out;
    });
}

const DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "X", ""];

/** A safetensors file: a header of plausible and implausible entries, a length prefix that may lie, a random buffer. */
const safetensorsBytes = fc.oneof(
  fc
    .tuple(
      fc.dictionary(
        fc.string({ maxLength: 8 }),
        fc.record(
          {
            dtype: fc.oneof(fc.constantFrom(...DTYPES), weird),
            shape: fc.oneof(fc.array(fc.oneof(fc.nat(8), fc.integer(), fc.constantFrom(1e9, 2 ** 40)), { maxLength: 4 }), weird),
            data_offsets: fc.oneof(fc.tuple(fc.nat(300), fc.nat(300)), fc.tuple(fc.integer(), fc.constantFrom(1e12, 2 ** 53)), weird),
          },
          { requiredKeys: [] },
        ),
        { maxKeys: 4 },
      ),
      fc.uint8Array({ maxLength: 300 }),
      fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { freq: 4 }),
    )
    .map(([header, data, lie]) => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + data.length);
      new DataView(out.buffer).setBigUint64(0, lie ?? BigInt(json.length), true);
      out.set(json, 8);
      out.set(data, 8 + json.length);
      return out;
    }),
  fc.uint8Array({ maxLength: 64 }),
  // a valid file with bytes flipped or cut
  fc.tuple(fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }), fc.option(fc.nat())).map(([flips, cut]) => {
    const valid = serializeSafetensors({
      a: { dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
      b: { dtype: "F16", shape: [4], data: new Uint16Array(4) },
    });
    const bytes = valid.slice(0, cut === null ? valid.length : cut % (valid.length + 1));
    for (const [at, v] of flips) if (bytes.length) bytes[at % bytes.length] = v;
    return bytes;
  }),
);

test("fuzz: safetensors headers, offsets, dtypes and shapes, then conversion to float32", () =>
  fuzz("safetensors", safetensorsBytes, (bytes) => {
    for (const [k, e] of parseSafetensors(bytes, "fuzz.safetensors").tensors) toFloat32(e, k);
  }));

test("fuzz: model config.json (ViT and RoBERTa) with fields replaced, removed and added", () => {
  const vit = JSON.parse(readFileSync(join(VIT, "config.json"), "utf8"));
  const roberta = JSON.parse(readFileSync(join(ROBERTA, "config.json"), "utf8"));
  return fuzz(
    "config.json",
    fc.oneof(
      mutated(vit).map((c) => ["vit", c] as const),
      mutated(roberta).map((c) => ["roberta", c] as const),
      weird.map((c) => ["vit", c] as const),
    ),
    ([family, raw]) => {
      if (family === "vit") parseViTConfig(raw as Record<string, unknown>, "config.json");
      else parseRobertaConfig(raw as Record<string, unknown>, "config.json");
    },
  );
});

test("fuzz: checkpoint folders (state.json and state.safetensors)", () => {
  saveCheckpoint(dir, { state: { step: 1, best: null, optimizer: { step: 1 } as never, configHash: "h" }, tensors: { params: new Float32Array(4) } });
  const validState = JSON.parse(readFileSync(join(dir, "checkpoint-1", "state.json"), "utf8"));
  const validTensors = readFileSync(join(dir, "checkpoint-1", "state.safetensors"));
  const arb = fc.tuple(fc.oneof(mutated(validState), weird), fc.oneof(fc.constant(new Uint8Array(validTensors)), safetensorsBytes));
  return fuzz("checkpoint folder", arb, ([state, tensors]) => checkpointFrom("ckpt", state, parseSafetensors(tensors, "state.safetensors")));
});

test("fuzz: a run's config.json (run settings) through the same checks as flags", () =>
  fuzz("run config", mutated(DEFAULTS as unknown as Record<string, unknown>), (raw) => {
    const cfg = applyConfig(DEFAULTS, raw, "config.json");
    trainConfig(cfg, "image-classification");
    if (cfg.ranks) parseRanks(cfg.ranks);
  }));

test("fuzz: tokenizer.json and tokenizer_config.json", () => {
  const valid = tokenizerJson() as Record<string, unknown>;
  const model = valid.model as Record<string, unknown>;
  const arb = fc.tuple(
    fc.oneof(
      mutated(valid),
      mutated(model).map((m) => ({ ...valid, model: m })),
      weird,
    ),
    fc.oneof(fc.constant({}), mutated({ pad_token: "<pad>", model_max_length: 512, bos_token: "<s>" })),
    fc.string({ maxLength: 30 }),
  );
  return fuzz("tokenizer", arb, ([json, config, text]) => {
    const tok = new TextTokenizer(json as object, config as Record<string, unknown>);
    tok.encode(text, undefined, { maxLength: 16 });
  });
});

const cellText = fc.string({ unit: fc.constantFrom("a", "b", ",", "\t", '"', "\n", "\r", " ", "1", "0", "-", "{", "}", ":", "é"), maxLength: 60 });

test("fuzz: CSV, TSV (GLUE) and JSONL data rows", () => {
  const files = { csv: join(dir, "rows.csv"), tsv: join(dir, "rows.tsv"), jsonl: join(dir, "rows.jsonl"), glue: join(dir, "train.tsv") };
  const jsonlRow = fc.oneof(
    fc.record({ text: weird, label: weird }, { requiredKeys: [] }).map((r) => JSON.stringify(r)),
    cellText,
  );
  const arb = fc.oneof(
    cellText.map((t) => ["csv", `text,label\n${t}`] as const),
    cellText.map((t) => ["tsv", `text\tlabel\n${t}`] as const),
    fc.array(jsonlRow, { maxLength: 5 }).map((rows) => ["jsonl", rows.join("\n")] as const),
    cellText.map((t) => ["glue", `sentence\tlabel\n${t}`] as const),
  );
  return fuzz("data rows", arb, ([kind, text]) => {
    if (kind === "csv") parseCsv(text, "rows.csv");
    writeFileSync(files[kind], text);
    if (kind === "glue") readGlueTsv("sst2", files.glue);
    else readTextTable(files[kind], { text: "text", label: "label" });
  });
});

test("fuzz: image files (mutated, truncated, lying dimensions, 60000×60000 bomb) through the preprocessor", async () => {
  const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toBuffer();
  const jpeg = await sharp(png).jpeg().toBuffer();
  const proc = new ImageProcessor({ size: { height: 8, width: 8 } } as never);
  const arb = fc.oneof(
    fc.tuple(fc.constantFrom(png, jpeg), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.option(fc.nat())).map(([valid, flips, cut]) => {
      const b = Buffer.from(valid.subarray(0, cut === null ? valid.length : cut % (valid.length + 1)));
      for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
      return b;
    }),
    fc.tuple(fc.constantFrom(1, 7, 60_000, 2 ** 31 - 1), fc.constantFrom(1, 9, 60_000, 2 ** 31 - 1)).map(([w, h]) => pngClaiming(w, h)),
    fc.uint8Array({ maxLength: 48 }).map((a) => Buffer.from(a)),
  );
  return fuzz("images", arb, (bytes) => proc.process(bytes));
});

/** Jinja fragments that together make loops, recursion, huge strings, syntax errors and failures. */
const templateText = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "{% for m in messages %}",
        "{% endfor %}",
        "{% for i in range(100000000) %}",
        "{% for i in range(1000) %}{% for j in range(1000) %}",
        "{% if add_generation_prompt %}",
        "{% endif %}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{{ m['content'] }}",
        "{{ messages[0]['role'] }}",
        "{{ messages|length }}",
        "{{ raise_exception('bad role') }}",
        "{{ 'x' * 100000000 }}",
        "{{ bos_token }}",
        "{%",
        "{{",
        "}}",
        "%}",
        "{{ messages[99] }}",
        "{% set x = x ~ x %}",
      ),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 6 },
  )
  .map((parts) => parts.join(""));

test("fuzz: chat templates render to text or end in a ChatTemplateError within their budget", () => {
  // one thread for all cases (a case that breaks its budget restarts it)
  const sandbox = new TemplateSandbox({ timeMs: 300, heapMb: 64, maxChars: 100_000 });
  return fuzz(
    "chat templates",
    templateText,
    (source) => {
      const text = new ChatTemplate(source, "tokenizer_config.json", sandbox).render({
        messages: [{ role: "user", content: "hi" }],
        add_generation_prompt: true,
        bos_token: "<s>",
      });
      assert.equal(typeof text, "string");
      assert.ok(text.length <= sandbox.limits.maxChars);
      // the case after one that broke its budget starts a new thread first: 0.3 s quiet, seconds on a loaded machine
    },
    10_000,
  ).finally(() => sandbox.close());
});

test("fuzz: queue payloads: a job the worker accepts names a folder inside its artifacts", () => {
  const artifacts = join(dir, "artifacts");
  const config = applyConfig(DEFAULTS, { epochs: 1 }, "test");
  const arm = { name: "lora", method: "lora", factorization: "tucker", headLayout: "head_major", coreLrScale: 1, ranks: "solver" };
  const compareJob = { kind: "compare", config, arm, budget: { kind: "iso-lora", rank: 2 }, seed: 0, fullLr: 1e-4, dryRun: false };
  const trainJob = { kind: "train", config, dryRun: false };
  const hostileName = fc.constantFrom("../x", "..", ".", "/abs", "a/../../b", "lora\0", "", ".hidden", "C:\\x", "lora+tt");
  const payload = fc.oneof(
    mutated(trainJob),
    mutated(compareJob),
    fc.tuple(mutated(compareJob), fc.oneof(hostileName, fc.string({ maxLength: 8 }))).map(([j, name]) => ({ ...j, arm: { ...arm, name } })),
    mutated(config as unknown as Record<string, unknown>).map((c) => ({ ...trainJob, config: c })),
    weird,
  );
  // the id is the payload's own hash (what a hostile writer would compute), or any string
  const arb = fc.tuple(
    payload,
    fc.oneof(
      fc.constant(undefined),
      hostileName,
      fc.string({ maxLength: 30 }),
      fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 24, maxLength: 24 }).map((h) => `run-${h}`),
    ),
  );
  return fuzz("queue payloads", arb, ([raw, given]) => {
    let id = given;
    if (id === undefined) {
      try {
        id = jobId(raw as RunJob);
      } catch {
        id = "run-";
      }
    }
    const job = parseRunJob(id, raw);
    const folder = resolve(
      job.kind === "compare" ? runDir(join(artifacts, id), job.arm.name, job.budget ? budgetLabel(job.budget) : "", job.seed) : join(artifacts, id),
    );
    assert.ok(folder.startsWith(resolve(artifacts) + sep), `${JSON.stringify(id)} → ${folder}`);
  });
});

test("fuzz: studio requests: 200 only for files under the root, 400/404 otherwise, and the server keeps serving", async () => {
  const site = join(dir, "site");
  mkdirSync(join(site, "sub"), { recursive: true });
  writeFileSync(join(site, "index.html"), "index");
  writeFileSync(join(site, "sub", "a.js"), "a");
  writeFileSync(join(dir, "secret.txt"), "secret");
  const { server, url } = await serveStudio(site);
  const get = (path: string) => rawGet(url, path);
  const piece = fc.oneof(
    fc.constantFrom("/", "..", ".", "%", "%2e", "%2f", "%5c", "%00", "%E0%A4%A", "%ff", "index.html", "sub", "a.js", "secret.txt", "?", "#", "//", "\\"),
    fc.string({ unit: fc.constantFrom("a", "%", "/", ".", "0", "f"), maxLength: 6 }),
  );
  const path = fc.array(piece, { maxLength: 6 }).map((p) => `/${p.join("")}`);
  try {
    await fuzz("studio requests", path, async (p) => {
      let r: { status: number; body: string };
      try {
        r = await get(p);
      } catch (e) {
        // Node's client refuses some paths before sending them (a space, a control character): not a server case
        if ((e as NodeJS.ErrnoException).code === "ERR_UNESCAPED_CHARACTERS") return;
        throw e;
      }
      assert.ok([200, 400, 404].includes(r.status), `${p}: ${r.status}`);
      if (r.status === 200) assert.ok(["index", "a"].includes(r.body), `${p} served ${JSON.stringify(r.body)}`);
    });
    assert.equal((await get("/")).body, "index", "still serving");
  } finally {
    server.close();
  }
});
