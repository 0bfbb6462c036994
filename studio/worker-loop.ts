/** What the studio's two workers (worker.ts, lm-worker.ts) share: their message loop and data that lets `stop` in. */
import type { TaskData } from "../src/browser.ts";

/** Task data that leaves a macrotask between batches, so a worker's `stop` message arrives while a run trains. */
export const yielding = (d: TaskData): TaskData => ({
  ...d,
  batch: async (split, indices, batchSize, augment) => {
    await new Promise((r) => setTimeout(r, 0));
    return d.batch(split, indices, batchSize, augment);
  },
});

/**
 * The worker's message loop: `{ type: "stop" }` flags the run in progress (read with
 * `stopRequested`); a run (`isRun`) is refused while another one runs; a failure goes back to the
 * page through `error` as one line; `idle` follows each run, finished or failed.
 */
export function workerLoop<M extends { type: string }>(o: {
  isRun: (m: M) => boolean;
  handle: (m: M) => Promise<void>;
  error: (message: string) => void;
  idle?: () => void;
}): { stopRequested: () => boolean } {
  let stop = false;
  let busy = false;
  self.onmessage = async (ev: MessageEvent<M>) => {
    const m = ev.data;
    if (m.type === "stop") {
      stop = true;
      return;
    }
    const run = o.isRun(m);
    if (run && busy) return o.error("a run is in progress; stop it first");
    if (run) {
      busy = true;
      stop = false;
    }
    try {
      await o.handle(m);
    } catch (e) {
      const err = e as Error;
      o.error(err.name && err.name !== "Error" ? `${err.name}: ${err.message}` : err.message);
    } finally {
      if (run) {
        busy = false;
        o.idle?.();
      }
    }
  };
  return { stopRequested: () => stop };
}
