/** Finding NaN and ±Infinity in float buffers: weights, adapters and logits are checked before they are trusted. */

/** Index of the first non-finite value, or -1. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** "" when every value is finite, else a phrase for messages: `3 non-finite values (the first, NaN, at index 17)`. */
export function describeNonFinite(data: ArrayLike<number>): string {
  const first = firstNonFinite(data);
  if (first < 0) return "";
  let count = 0;
  for (let i = first; i < data.length; i++) if (!Number.isFinite(data[i])) count++;
  return `${count} non-finite value${count === 1 ? "" : "s"} (the first, ${data[first]}, at index ${first})`;
}
