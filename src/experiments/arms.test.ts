import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../errors.ts";
import { type ArmGrid, expandArms, parseLrs, parseSeeds } from "./arms.ts";

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

test("--ranks auto is Tucker's: other factorisations take the solver's ranks, and without the solver they are refused", () => {
  const arms = expandArms(grid({ factorizations: ["tucker", "cp"], rankModes: ["auto", "solver"] }));
  assert.deepEqual(
    arms.map((a) => [a.name, a.factorization, a.ranks]),
    [
      ["lora", "tucker", "auto"],
      ["qkv", "tucker", "auto"],
      ["qkv+solver-ranks", "tucker", "solver"],
      ["qkv+cp+solver-ranks", "cp", "solver"],
    ],
  );
  for (const f of ["cp", "tt", "partial_tucker"] as const) {
    assert.throws(
      () => expandArms(grid({ factorizations: [f], rankModes: ["auto"] })),
      (e: unknown) => e instanceof ConfigError && e.message.includes(`factorization "${f}" does not have`) && e.message.includes("--factorization tucker"),
    );
  }
});

test("an unknown factorisation is refused with the valid ones", () => {
  assert.throws(
    () => expandArms(grid({ factorizations: ["tucker", "tensor-ring" as never] })),
    (e: unknown) => e instanceof ConfigError && e.message === '--factorizations: unknown "tensor-ring"; valid: tucker, cp, tt, partial_tucker',
  );
});

test("seeds: lists and ranges, refusing reversed ranges, repeats and non-integers with the flag's form", () => {
  assert.deepEqual(parseSeeds("0,1,2"), [0, 1, 2]);
  assert.deepEqual(parseSeeds("0-4,7"), [0, 1, 2, 3, 4, 7]);
  assert.deepEqual(parseSeeds(" 3 "), [3]);
  for (const bad of ["4-2", "1,1", "0-2,2", "-1", "1.5", "a", ""]) assert.throws(() => parseSeeds(bad), ConfigError, bad);
});

test("--lrs: each rate an arm of every adapter method, the first the default arm's, which carries no lr (its settings stay those of a run without --lrs)", () => {
  const arms = expandArms(grid({ methods: ["lora", "qkv", "head", "full"], lrs: [3e-3, 1e-3, 1e-2] }));
  assert.deepEqual(
    arms.map((a) => [a.name, a.lr]),
    [
      ["lora", undefined],
      ["lora+lr-0.001", 1e-3],
      ["lora+lr-0.01", 1e-2],
      ["qkv", undefined],
      ["qkv+lr-0.001", 1e-3],
      ["qkv+lr-0.01", 1e-2],
      // the baselines run once, at the comparison's rates
      ["head", undefined],
      ["full", undefined],
    ],
  );
  assert.equal("lr" in arms[0], false);
  assert.deepEqual(expandArms(grid({ lrs: [3e-3] })), expandArms(grid({})));
});

test("--lrs refuses a rate outside (0, 1], a repeat, an empty item, with the list as given", () => {
  assert.deepEqual(parseLrs("3e-3, 1e-3,0.01"), [3e-3, 1e-3, 1e-2]);
  for (const [list, says] of [
    ["3e-3,0", 'got "3e-3,0"'],
    ["3e-3,,1e-3", 'got "3e-3,,1e-3"'],
    ["fast", 'got "fast"'],
    ["2", 'got "2"'],
    ["1e-3,0.001", "lists a rate twice"],
  ]) {
    assert.throws(
      () => parseLrs(list),
      (e: unknown) => e instanceof ConfigError && e.message.includes(says) && e.message.startsWith("--lrs"),
      list,
    );
  }
  assert.throws(
    () => expandArms(grid({ lrs: [1e-3, -1] })),
    (e: unknown) => e instanceof ConfigError && e.message.includes("0.001, -1"),
  );
});
