import { SMOLLM2_135M, randomModel } from "./models.ts";
import { trainingStep } from "./step.ts";
import { peakRssMiB, rssMiB } from "./harness.ts";
const argv = process.argv.slice(2);
const L = Number(argv[0]), T = Number(argv[1]), ck = argv[2] === "1", chunk = Number(argv[3]) || undefined;
const p = (s: string) => console.log(`${s}: rss ${rssMiB().toFixed(0)} peak ${peakRssMiB().toFixed(0)}`);
p("start");
const model = randomModel(SMOLLM2_135M, { num_hidden_layers: L });
p("model");
const step = await trainingStep(model, { construction: "lora", ranks: 16, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] }, 4, T, { checkpointActivations: ck, lossChunk: chunk });
p("compiled");
for (let i = 0; i < 2; i++) { const t0 = performance.now(); await step.step(); p(`step ${i} ${((performance.now() - t0) / 1000).toFixed(2)} s`); }
