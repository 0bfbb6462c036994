/**
 * `tenslora merge`: fold a trained adapter (or apply a trained head / full model) into a standard
 * HuggingFace folder, and with --onnx also write onnx/model.onnx that onnxruntime and transformers.js load as it is.
 */
import { type Command, Option } from "commander";
import { mergeToFolder, taskOf } from "../../src/index.ts";
import { baseDtypeOf, runConfigBeside } from "../options.ts";

export function register(program: Command): void {
  program
    .command("merge")
    .description("fold an adapter into the model's weights: a HuggingFace folder (and an ONNX inference graph with --onnx)")
    .requiredOption("--model <dir>", "HuggingFace model folder the adapter was trained on")
    .option(
      "--adapter <dir>",
      "adapter folder (PEFT LoRA or TensLoRA), head folder or full model folder, e.g. RUN_DIR/best (without: the model as it is, e.g. to export it to ONNX)",
    )
    .requiredOption("--out <dir>", "output folder (config.json, model.safetensors, tokenizer/preprocessor files)")
    .option(
      "--onnx",
      "also write onnx/model.onnx for ONNX Runtime and transformers.js (inputs by HF names, dynamic batch/sequence, output logits; onnx/model.onnx_data when over 2 GB)",
    )
    .addOption(
      new Option("--quantize <kind>", "with --onnx, also write onnx/model_quantized.onnx with int8 weight matrices (transformers.js dtype q8)").choices(["q8"]),
    )
    .option(
      "--base-dtype <dtype>",
      "f32 | f16 | int8 | int4: the base the adapter was trained on; a quantized one is dequantized before the update is added, and written in float32 (default: the run's, else f32)",
    )
    .option("--overwrite", "replace what --out already holds (a non-empty folder is refused otherwise)")
    .option("--json", "print the result as JSON")
    .action(
      async (opts: {
        model: string;
        adapter?: string;
        out: string;
        onnx?: boolean;
        quantize?: "q8";
        baseDtype?: string;
        overwrite?: boolean;
        json?: boolean;
      }) => {
        const baseDtype = baseDtypeOf(opts, opts.adapter ? runConfigBeside(opts.adapter) : {});
        const r = await mergeToFolder(opts.model, opts.adapter, opts.out, {
          onnx: Boolean(opts.onnx),
          quantize: opts.quantize,
          baseDtype,
          overwrite: opts.overwrite,
        });
        if (opts.json) console.log(JSON.stringify(r));
        else {
          const what = r.mergedProjections ? `${r.mergedProjections} adapted projections folded in` : opts.adapter ? "trained weights applied" : "no adapter";
          const labels = taskOf(r.task).generates ? "" : `; ${r.labels.length} labels: ${r.labels.join(", ")}`;
          const q8 = r.quantizedMatrices ? `; ${r.quantizedMatrices} weight matrices int8 in the q8 model` : "";
          const base = r.baseDtype === "f32" ? "" : `; onto the ${r.baseDtype} base dequantized to float32, written as float32`;
          console.log(`merged into ${r.dir} (${what}${base}${labels}${q8}): ${r.files.join(", ")}`);
        }
      },
    );
}
