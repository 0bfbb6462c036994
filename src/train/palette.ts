/**
 * Series colours for every plot: the Okabe–Ito colours (distinguishable with the common colour
 * vision deficiencies) with black first, so the first series — LoRA in a comparison — stands
 * apart from the tensor constructions, then Tableau colours that differ from those in hue.
 * Yellow is left out: it vanishes on a white background. Beyond the palette, series repeat a
 * colour with a different dash pattern.
 */
export const SERIES_COLOURS = [
  "#000000",
  "#e69f00",
  "#56b4e9",
  "#009e73",
  "#d55e00",
  "#0072b2",
  "#cc79a7",
  "#8c564b",
  "#bcbd22",
  "#7f7f7f",
  "#9467bd",
  "#17becf",
] as const;

/** Stroke dash patterns, one per pass through the palette (solid first). */
export const SERIES_DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3]] as const;

/** The colour and dash of the `i`-th series. */
export function seriesStyle(i: number): { colour: string; dash: readonly number[] } {
  const n = SERIES_COLOURS.length;
  return { colour: SERIES_COLOURS[i % n], dash: SERIES_DASHES[Math.floor(i / n) % SERIES_DASHES.length] };
}
