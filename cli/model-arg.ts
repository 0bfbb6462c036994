/**
 * `--model org/name`: a Hub repo id instead of a folder. Found in the Hugging Face cache first,
 * offline; fetched into it only when absent (and HF_HUB_OFFLINE is not set).
 */
import type { Command } from "commander";
import { downloadModel, looksLikeRepoId, resolveModelFromCache } from "../src/index.ts";

export async function resolveModelOption(cmd: Command): Promise<void> {
  const spec = cmd.opts().model;
  if (typeof spec !== "string" || !looksLikeRepoId(spec) || resolveModelFromCache(spec) !== spec) return;
  if (process.env.HF_HUB_OFFLINE === "1") return; // loadModel's error says how to download it
  cmd.setOptionValue("model", await downloadModel(spec, { log: (s) => console.error(s) }));
}
