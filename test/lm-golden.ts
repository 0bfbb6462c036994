/** The float64 references of test/fixtures/hf-tiny-lm (see its README), read by name. */
import { join } from "node:path";
import { toBigInt64, toFloat32 } from "../src/io/dtype-convert.ts";
import { readSafetensors } from "../src/io/safetensors.ts";
import type { HostTensor } from "../src/tensor/host.ts";

export const LM_FIXTURES = "test/fixtures/hf-tiny-lm";

export function lmGolden(name: string) {
  const g = readSafetensors(join(LM_FIXTURES, `${name}.safetensors`)).tensors;
  const f32 = (k: string) => toFloat32(g.get(k)!, k);
  const i64 = (k: string): HostTensor => ({ dtype: "int64", shape: g.get(k)!.shape, data: toBigInt64(g.get(k)!) });
  return { g, f32, i64 };
}
