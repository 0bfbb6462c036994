/**
 * Checks every loader runs before handing a dataset out, so that a bad label or a degenerate
 * class list fails at load time instead of as a NaN loss or an out-of-range gather mid-training.
 */
import { DataError } from "../errors.ts";
import type { Dataset, SkippedFile, WarnFn } from "./types.ts";

/** How an item is named in messages: its file when it has one, else its position. */
function describeItem(ds: Dataset, i: number): string {
  const item = ds.items[i];
  return "path" in item ? `item ${i} (${item.path})` : `item ${i}`;
}

/**
 * Throw a DataError unless `ds` has at least 2 classes, at least one item, and every label is an
 * integer in [0, classNames.length). `source` names the file or folder in the message.
 */
export function checkDataset(ds: Dataset, source: string): void {
  const n = ds.classNames.length;
  if (n < 2) {
    throw new DataError(
      `A classification dataset needs at least 2 classes; ${source} has ${n} ` + `(${JSON.stringify(ds.classNames)}). Check the path and the label column.`,
    );
  }
  if (ds.items.length === 0) {
    throw new DataError(`Dataset ${source} has no examples. Check the path and the split files.`);
  }
  for (let i = 0; i < ds.items.length; i++) {
    const label = ds.items[i].label;
    if (!Number.isInteger(label) || label < 0 || label >= n) {
      throw new DataError(
        `Labels must be integers in [0, ${n}); ${source} ${describeItem(ds, i)} has label ` + `${label}. Fix the label or pass the full classNames list.`,
      );
    }
  }
}

/** One warning for all skipped files: the count, the first few paths with reasons. */
export function warnSkipped(skipped: SkippedFile[], source: string, warn: WarnFn): void {
  if (skipped.length === 0) return;
  const shown = skipped.slice(0, 5).map((s) => `  ${s.path}: ${s.reason}`);
  const more = skipped.length > shown.length ? `\n  … and ${skipped.length - shown.length} more` : "";
  warn(`Skipped ${skipped.length} unreadable image file(s) in ${source} ` + `(listed in the dataset's "skipped" field):\n${shown.join("\n")}${more}`);
}
