/** Messages between the studio page (app.ts) and its training worker (worker.ts). */
import type { RunConfig } from "../src/browser.ts";

export type Device = "wasm" | "webgpu";

/** The settings the page lets the user change; the rest are `tenslora train`'s embedded defaults. */
export type StudioSettings = Pick<RunConfig, "isoLora" | "epochs" | "batchSize" | "lr" | "seed" | "evalEvery">;

export type ToWorker =
  | { type: "init"; device: Device | "auto"; base: string; threads: number }
  | { type: "digits"; bytes: ArrayBuffer }
  /** `config` absent: the current backbone's config.json (or the embedded one). */
  | { type: "backbone"; config?: ArrayBuffer; weights: ArrayBuffer; name: string }
  | { type: "pretrain"; epochs: number }
  | { type: "train"; methods: string[]; settings: StudioSettings }
  | { type: "stop" }
  | { type: "resume" }
  | { type: "classify"; run: string; pixels: Uint8Array }
  | { type: "download"; run: string }
  | { type: "adapter"; config: ArrayBuffer; weights: ArrayBuffer; names: { config: string; weights: string } };

export interface RunRow {
  run: string;
  ranks: number[] | null;
  params: number;
  /** Test accuracy at the evaluation the validation split selected (the adapter the page downloads). */
  best: number;
  final: number;
  stepMs: number;
  steps: number;
}

export type FromWorker =
  | { type: "ready"; device: Device; note: string }
  | { type: "status"; text: string }
  | { type: "backbone"; source: string; params: number }
  | { type: "progress"; what: string; step: number; total: number; loss: number }
  | { type: "step"; run: string; step: number; total: number; loss: number }
  | { type: "eval"; run: string; step: number; accuracy: number }
  | { type: "run-done"; row: RunRow; interrupted: boolean }
  | { type: "idle"; stopped: boolean }
  | { type: "prediction"; run: string; probs: number[]; labels: string[] }
  | { type: "files"; run: string; files: { name: string; bytes: Uint8Array }[] }
  | { type: "adapter-loaded"; run: string }
  | { type: "error"; message: string };
