/**
 * `tenslora analyze`: where an adapter's redundancy lies. Stacks the updates ΔW[p,l] of each
 * shape group into one (in, dh, heads, qkv, depth) tensor, whatever construction made it, and
 * prints the normalised singular values of each mode's unfolding (σ_k / σ_1), their entropy and
 * top-1 energy, group by group, then plots them.
 *
 *   tenslora analyze --adapter runs/vit-qkv_depth/adapter --model ./vit-base --out spectrum.png
 */
import { join } from "node:path";
import type { Command } from "commander";
import {
  ConfigError,
  type ModeSpectrum,
  STACK_MODE_NAMES,
  groupState,
  loadAdapterForConfig,
  multilinearSpectrum,
  numericalRank,
  stackAdapterUpdates,
  writePlot,
} from "../../src/index.ts";

interface AnalyzeOptions {
  adapter: string;
  model: string;
  out?: string;
  json?: boolean;
}

/** Values printed per mode in the text report. */
const SHOWN = 12;

/** One shape group's stacked updates: its projections, the construction it runs, and the spectrum per mode. */
export interface GroupSpectrum {
  name: string;
  construction: string;
  spectrum: ModeSpectrum[];
}

/** The multilinear spectrum of every shape group of the adapter folder `adapterDir` for the model folder `modelDir` (config.json only). */
export function analyzeAdapter(adapterDir: string, modelDir: string): { construction: string; groups: GroupSpectrum[] } {
  const { set } = loadAdapterForConfig(adapterDir, modelDir);
  const groups = set.groups.map((g) => ({
    name: g.name,
    construction: g.construction,
    // [in, dh, heads, qkv, depth], the model's head order; a group without heads stacks (in, out, 1, qkv, depth)
    spectrum: multilinearSpectrum(stackAdapterUpdates(groupState(set, g)), g.shape.heads > 1 ? STACK_MODE_NAMES : ["in", "out", "heads", "qkv", "depth"]),
  }));
  return { construction: set.config.construction, groups };
}

function report(construction: string, groups: GroupSpectrum[]): string {
  const lines = [`multilinear spectrum of the stacked update tensor of each shape group (${construction}); σ_k/σ_1 per mode:`];
  for (const g of groups) {
    lines.push(`group ${g.name} (${g.construction}):`);
    lines.push(...modeLines(g.spectrum));
  }
  return lines.join("\n");
}

function modeLines(spectrum: ModeSpectrum[]): string[] {
  const lines: string[] = [];
  for (const m of spectrum) {
    const values = [...m.normalized.subarray(0, SHOWN)].map((v) => v.toFixed(3)).join(" ");
    const more = m.normalized.length > SHOWN ? ` … (${m.normalized.length} values)` : "";
    lines.push(
      `  ${(m.name ?? String(m.mode)).padEnd(6)} size ${String(m.size).padStart(5)}  rank ${String(numericalRank(m)).padStart(4)}  ` +
        `entropy ${m.entropy.toFixed(3)}  top-1 energy ${m.top1Energy.toFixed(3)}  ${values}${more}`,
    );
  }
  return lines;
}

async function run(o: AnalyzeOptions): Promise<void> {
  const { construction, groups } = analyzeAdapter(o.adapter, o.model);
  const base = o.out ? o.out.replace(/\.(svg|png)$/i, "") : join(o.adapter, "spectrum");
  if (base === "") throw new ConfigError(`--out must name a file, got "${o.out}"`);
  const { svgPath, pngPath } = await writePlot(base, {
    kind: "line",
    title: `Multilinear spectrum (${construction})`,
    xLabel: "k",
    yLabel: "σ_k / σ_1",
    series: groups.flatMap((g) =>
      g.spectrum.map((m) => ({
        name: `${groups.length > 1 ? `${g.name} ` : ""}${m.name} (${m.size})`,
        points: [...m.normalized].map((v, k): [number, number] => [k + 1, v]),
      })),
    ),
  });
  if (o.json) {
    const json = groups.map((g) => ({
      name: g.name,
      construction: g.construction,
      modes: g.spectrum.map((m) => ({
        name: m.name,
        size: m.size,
        numerical_rank: numericalRank(m),
        entropy: m.entropy,
        top1_energy: m.top1Energy,
        normalized: [...m.normalized],
      })),
    }));
    console.log(JSON.stringify({ construction, groups: json, plot: { svg: svgPath, png: pngPath } }));
  } else {
    console.log(`${report(construction, groups)}\nplot: ${svgPath}, ${pngPath}`);
  }
}

export function register(program: Command): void {
  program
    .command("analyze")
    .description("multilinear singular values of an adapter's stacked updates per mode (in, dh, heads, qkv, depth), printed and plotted")
    .requiredOption("--adapter <dir>", "adapter folder (PEFT LoRA or TensLoRA)")
    .requiredOption("--model <dir>", "the model folder it was trained on (config.json is read)")
    .option("--out <file>", "plot path; .svg and .png are written (default <adapter>/spectrum)")
    .option("--json", "print JSON")
    .action((o: AnalyzeOptions) => run(o));
}
