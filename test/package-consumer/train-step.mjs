// A plain JavaScript user of the installed package: one SGD step on an adapter of a ViT folder
// lowers the loss on the batch it was computed from, and the two losses are plotted (the plot's
// font ships in the package). Prints the losses and the PNG's path as JSON.
import { buildModelGraph, compile, createAdapter, f32, i64, loadModel, writePlot } from "tenslora";

const model = loadModel(process.argv[2], { numLabels: 5 });
const { set } = createAdapter(model, { construction: "qkv_depth", ranks: [4, 4, 3, 2], seed: 1 });
const { graph, trainable, weights } = buildModelGraph({ model, adapter: set, batch: 4, trainable: "adapter+head", loss: true, grads: true });
const step = await compile(graph, { threads: 1 });
const size = model.config.imageSize;
const pixels = f32(
  [4, 3, size, size],
  Float32Array.from({ length: 4 * 3 * size * size }, (_, i) => Math.sin(i * 0.37)),
);
const labels = i64([4], [0, 1, 2, 3]);
const params = Object.fromEntries(trainable.map((name) => [name, f32(weights.get(name).shape, weights.get(name).data)]));
const run = () => step.run({ pixel_values: pixels, labels, ...params });
const first = await run();
for (const name of trainable) {
  const p = params[name];
  const g = first[`grad.${name}`].data;
  params[name] = f32(
    p.shape,
    p.data.map((v, i) => v - 0.5 * g[i]),
  );
}
const second = await run();
step.dispose();
const [before, after] = [first.loss.data[0], second.loss.data[0]];
const plot = {
  kind: "line",
  title: "one step",
  xLabel: "step",
  yLabel: "loss",
  series: [
    {
      name: "loss",
      points: [
        [0, before],
        [1, after],
      ],
    },
  ],
};
const { pngPath } = await writePlot("loss", plot);
console.log(JSON.stringify({ before, after, pngPath }));
