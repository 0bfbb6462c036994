/** Task data that leaves a macrotask between batches, so a worker's `stop` message arrives while a run trains. */
import type { TaskData } from "../src/browser.ts";

export const yielding = (d: TaskData): TaskData => ({
  ...d,
  batch: async (split, indices, batchSize, augment) => {
    await new Promise((r) => setTimeout(r, 0));
    return d.batch(split, indices, batchSize, augment);
  },
});
