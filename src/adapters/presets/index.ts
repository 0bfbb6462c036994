/** Published tensor methods as presets; a new one is one file and one line here. */
import { ConfigError } from "../../errors.ts";
import { type AdapterOptions, planAdapter } from "../config.ts";
import type { LinearSite } from "../../nn/sites.ts";
import { factTk } from "./fact-tk.ts";
import { factTt } from "./fact-tt.ts";
import { lorta } from "./lorta.ts";
import { lotr } from "./lotr.ts";
import type { AdapterPreset } from "./types.ts";

/** Adapter presets from the literature (LoRTA, LoTR, FacT-TK, FacT-TT) as settings of the general constructions. */
export const PRESETS: Readonly<Record<string, AdapterPreset>> = { lorta, lotr, fact_tk: factTk, fact_tt: factTt };

/** Look up a preset by name; throws a ConfigError listing the valid ones. */
export function parsePreset(name: string): AdapterPreset {
  const p = PRESETS[name];
  if (!p) throw new ConfigError(`unknown preset "${name}"; valid presets: ${Object.keys(PRESETS).join(", ")}`);
  return p;
}

/** The adapter options of a preset on a model with rank r (the preset's own per-group ranks where it fixes some). */
export function presetOptions(name: string, sites: LinearSite[], r: number): AdapterOptions {
  const preset = parsePreset(name);
  const base = preset.options(sites);
  if (!preset.ranks) return { ...base, ranks: r };
  const { groups } = planAdapter({ ...base, ranks: 1 }, sites);
  const groupRanks = Object.fromEntries(groups.map((g) => [g.name, preset.ranks!(r, g)]));
  return { ...base, ranks: Object.values(groupRanks)[0], groupRanks };
}
