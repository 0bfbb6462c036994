/**
 * Small synthetic data sets and model folders for the end-to-end, CLI and resume tests: an image
 * folder of class-coloured PNGs (written with sharp), GLUE SST-2 TSV files over a tiny word list,
 * and a copy of the fixture RoBERTa with a hand-made WordLevel tokenizer.json (the fixture folder
 * ships none). Everything lives under temp folders removed when the test process exits.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { Rng } from "../src/tensor/random.ts";

export const FIXTURES = "test/fixtures/hf-tiny";
export const VIT = join(FIXTURES, "vit");
export const ROBERTA = join(FIXTURES, "roberta");

const made = new Set<string>();

/** A fresh temp folder, deleted at exit (keep it with TENSLORA_KEEP_TMP=1 to debug). */
export function tempDir(prefix = "tenslora-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (process.env.TENSLORA_KEEP_TMP) return dir;
  // one exit listener for every folder: a test that makes dozens would trip Node's listener-leak warning
  if (made.size === 0) process.on("exit", () => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  made.add(dir);
  return dir;
}

/** The environment for CLI child processes: a private model cache, so no test touches the user's. */
export function cliEnv(cache: string): NodeJS.ProcessEnv {
  return { ...process.env, TENSLORA_CACHE: cache, FORCE_COLOR: "0", NO_COLOR: "1" };
}

/** RGB base colours per class; images add seeded noise so they are not constant. */
const CLASS_COLOURS: [number, number, number][] = [
  [220, 40, 40],
  [40, 60, 220],
  [40, 200, 60],
  [200, 200, 40],
];

/** Pixels of one noisy image of class `label`, `size`×`size`×3 (HWC, 8-bit). */
export function classImage(label: number, size: number, rng: Rng): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  const base = CLASS_COLOURS[label % CLASS_COLOURS.length];
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) px[i * 3 + c] = Math.max(0, Math.min(255, Math.round(base[c] + (rng.uniform() - 0.5) * 80)));
  }
  return px;
}

export async function writePng(path: string, px: Uint8Array, size: number): Promise<void> {
  await sharp(Buffer.from(px), { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toFile(path);
}

/** `root/<class>/<i>.png`, EuroSAT's layout; returns the class names. */
export async function writeImageFolder(root: string, opts: { classes?: number; perClass?: number; size?: number; seed?: number } = {}): Promise<string[]> {
  const { classes = 2, perClass = 8, size = 32, seed = 1 } = opts;
  const rng = new Rng(seed);
  const names = Array.from({ length: classes }, (_, c) => `class_${String.fromCharCode(97 + c)}`);
  for (let c = 0; c < classes; c++) {
    mkdirSync(join(root, names[c]), { recursive: true });
    for (let i = 0; i < perClass; i++) await writePng(join(root, names[c], `${i}.png`), classImage(c, size, rng), size);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// text

/** Words of the synthetic sentiment task: ids 4.. in the tokenizer below. */
export const POSITIVE = ["good", "great", "fine", "nice", "happy", "love"];
export const NEGATIVE = ["bad", "awful", "poor", "sad", "hate", "ugly"];
export const NEUTRAL = ["the", "a", "movie", "film", "was", "is", "very", "plot"];
const WORDS = [...NEUTRAL, ...POSITIVE, ...NEGATIVE];

/**
 * A RoBERTa-style WordLevel tokenizer: whitespace split, `<s> A </s></s> B </s>` through the
 * RobertaProcessing template, pad id 1 as the fixture config says. 4 + 20 ids < vocab 100.
 */
export function tokenizerJson(): object {
  const vocab: Record<string, number> = { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3 };
  WORDS.forEach((w, i) => (vocab[w] = 4 + i));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<s>"), special(1, "<pad>"), special(2, "</s>"), special(3, "<unk>")],
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false },
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: "<unk>" },
  };
}

/** A copy of the fixture RoBERTa with tokenizer.json and tokenizer_config.json added. */
export function robertaWithTokenizer(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(ROBERTA)) copyFileSync(join(ROBERTA, f), join(dir, f));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson()));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ pad_token: "<pad>", bos_token: "<s>", eos_token: "</s>", model_max_length: 32 }));
  return dir;
}

/** Seeded sentences: label 1 holds a positive word, label 0 a negative one. */
export function sentences(n: number, seed: number): { text: string; label: number }[] {
  const rng = new Rng(seed);
  const pick = (xs: string[]) => xs[Math.floor(rng.uniform() * xs.length)];
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    const words = [pick(NEUTRAL), pick(NEUTRAL), pick(label ? POSITIVE : NEGATIVE), pick(NEUTRAL)];
    if (rng.uniform() < 0.5) words.push(pick(NEUTRAL));
    return { text: words.join(" "), label };
  });
}

/** A GLUE SST-2 folder (`<parent>/sst2/{train,dev}.tsv`); returns its path. */
export function writeSst2(parent: string, train = 24, dev = 8, seed = 3): string {
  const dir = join(parent, "sst2");
  mkdirSync(dir, { recursive: true });
  const tsv = (rows: { text: string; label: number }[]) => ["sentence\tlabel", ...rows.map((r) => `${r.text}\t${r.label}`)].join("\n") + "\n";
  writeFileSync(join(dir, "train.tsv"), tsv(sentences(train, seed)));
  writeFileSync(join(dir, "dev.tsv"), tsv(sentences(dev, seed + 100)));
  return dir;
}

/** A PNG whose header claims `w`×`h` pixels over a tiny (valid) IDAT. */
export function pngClaiming(w: number, h: number): Buffer {
  const crc = (b: Buffer) => {
    let c = ~0;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.alloc(64))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Seeded chat records: the assistant continues the user's word sequence. */
export function chatFile(path: string, n: number): string {
  const lines = Array.from({ length: n }, (_, i) => {
    const a = 6 + ((i * 7) % 60);
    return JSON.stringify({
      messages: [
        { role: "user", content: `w${a} w${a + 1}` },
        { role: "assistant", content: `w${a + 2} w${a + 3}` },
      ],
    });
  });
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}
