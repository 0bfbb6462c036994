/** Messages between the decoder page (lm-page.ts) and its worker (lm-worker.ts). */
import type { LmRunOptions, LmRunResult } from "./lm-run.ts";

/** A model folder: a URL ending in "/" on the page's server, or the files the user chose. */
export type ModelSource = { kind: "url"; url: string } | { kind: "files"; files: File[] };

/** What to train on: the user's text (a `.jsonl` name: records; else plain text), or token cycles, which need no tokenizer. */
export type TrainingText = { kind: "text"; name: string; text: string } | { kind: "cycles" };

export interface LmTrainRequest {
  model: ModelSource;
  baseDtype: string;
  data: TrainingText;
  options: LmRunOptions;
}

export type ToLmWorker = { type: "init"; base: string; threads: number } | ({ type: "train" } & LmTrainRequest) | { type: "stop" } | { type: "download" };

export type FromLmWorker =
  | { type: "status"; text: string }
  | { type: "loaded"; name: string; params: number; loadSeconds: number; reused: boolean }
  | { type: "step"; step: number; total: number; loss: number }
  | { type: "eval"; step: number; loss: number }
  | { type: "done"; result: LmRunResult; loadSeconds: number }
  | { type: "files"; files: { name: string; bytes: Uint8Array }[] }
  | { type: "error"; message: string };
