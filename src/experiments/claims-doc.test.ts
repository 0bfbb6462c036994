/** The claims table's seed column: finished seeds written back as `--seeds` would take them. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { seedRanges } from "./claims-doc.ts";
import { parseSeeds } from "./arms.ts";

test("seedRanges writes consecutive seeds as ranges and gaps as commas, and parseSeeds reads it back", () => {
  assert.equal(seedRanges([0, 9]), "0, 9");
  assert.equal(seedRanges([0, 1, 2, 9]), "0–2, 9");
  assert.equal(seedRanges([4]), "4");
  for (const seeds of [[0, 9], [0, 1, 2, 5, 6, 9], [3]]) assert.deepEqual(parseSeeds(seedRanges(seeds).replaceAll("–", "-").replaceAll(" ", "")), seeds);
});
