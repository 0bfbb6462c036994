/**
 * One training step of a tiny ViT with a TensLoRA adapter on TENSLORA_EP's providers and on the
 * CPU, printed as JSON: { providers, loss: [ep, cpu], maxGradRelDiff }. Run as a child process by
 * webgpu.node.test.ts, because Dawn reads VK_ICD_FILENAMES when ONNX Runtime loads.
 */
import { createAdapter } from "../src/pipeline/context.ts";
import { buildModelGraph } from "../src/pipeline/build.ts";
import { randomModel } from "../src/models/init.ts";
import { compile, defaultProviders } from "../src/runtime/session.ts";
import type { HostTensor } from "../src/tensor/host.ts";
import { Rng } from "../src/tensor/random.ts";

const model = randomModel(
  {
    model_type: "vit",
    hidden_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    intermediate_size: 32,
    image_size: 8,
    patch_size: 4,
    num_channels: 1,
    qkv_bias: true,
    hidden_act: "gelu",
    layer_norm_eps: 1e-12,
    num_labels: 3,
  },
  3,
);
const { set } = createAdapter(model, { construction: "qkv_depth", ranks: [2, 2, 2, 2], seed: 1 });
const B = 4;
const built = buildModelGraph({ model, adapter: set, batch: B, trainable: "adapter+head", loss: true, grads: true });
const rng = new Rng(5);
const pixels: HostTensor = { dtype: "float32", shape: [B, 1, 8, 8], data: rng.normalArray(B * 64, 1) };
const feeds: Record<string, HostTensor> = {
  ...model.family.feeds(model.config, { pixel_values: pixels }),
  labels: { dtype: "int64", shape: [B], data: BigInt64Array.from([0n, 2n, 1n, 2n]) },
  ...Object.fromEntries(built.trainable.map((k) => [k, { dtype: "float32" as const, shape: built.weights.get(k)!.shape, data: built.weights.get(k)!.data }])),
};
const run = async (executionProviders: string[]) => {
  const g = await compile(built.graph, { executionProviders, threads: 1 });
  try {
    return await g.run(feeds);
  } finally {
    g.dispose();
  }
};
const ep = await run(defaultProviders());
const cpu = await run(["cpu"]);
let worst = 0;
for (const k of built.trainable) {
  const a = ep[`grad.${k}`].data as Float32Array;
  const b = cpu[`grad.${k}`].data as Float32Array;
  const scale = Math.max(...Array.from(b, Math.abs), 1e-12);
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
}
console.log(
  JSON.stringify({ providers: defaultProviders(), loss: [ep.loss.data[0], cpu.loss.data[0]], maxGradRelDiff: worst, params: built.trainable.length }),
);
