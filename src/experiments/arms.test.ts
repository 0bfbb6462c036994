import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { type ArmGrid, expandArms } from "./arms.ts";

const grid = (g: Partial<ArmGrid>): ArmGrid => ({
  methods: ["lora", "qkv"],
  factorizations: ["tucker"],
  headLayouts: ["head_major"],
  coreLrScales: [1],
  rankModes: ["solver"],
  ...g,
});

test("every registered factorisation is an arm of the tensor constructions; LoRA runs once", () => {
  const arms = expandArms(grid({ factorizations: ["tucker", "cp", "tt", "partial_tucker"], rankModes: ["solver", "auto"] }));
  assert.deepEqual(
    arms.map((a) => a.name),
    // the spectrum chooses Tucker's multilinear ranks only
    ["lora", "qkv", "qkv+auto-ranks", "qkv+cp", "qkv+tt", "qkv+partial_tucker"],
  );
  assert.deepEqual(
    arms.filter((a) => a.method === "qkv").map((a) => [a.factorization, a.ranks]),
    [
      ["tucker", "solver"],
      ["tucker", "auto"],
      ["cp", "solver"],
      ["tt", "solver"],
      ["partial_tucker", "solver"],
    ],
  );
});

test("an unknown factorisation is refused with the valid ones", () => {
  assert.throws(
    () => expandArms(grid({ factorizations: ["tucker", "tensor-ring" as never] })),
    (e: unknown) => e instanceof ConfigError && e.message === '--factorizations: unknown "tensor-ring"; valid: tucker, cp, tt, partial_tucker',
  );
});
