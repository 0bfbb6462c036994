/** Matching `targetModules` against a model's linear layers, with a loud "nothing matched". */
import { ShapeError, TargetNotFoundError } from "../errors.ts";
import type { LinearSite } from "../models/types.ts";

/** A target names a layer by its short name, its full path, a path suffix, or a whole-path regex "/…/". */
export function siteMatches(site: LinearSite, target: string): boolean {
  if (target.startsWith("/") && target.endsWith("/") && target.length > 2) return new RegExp(`^(?:${target.slice(1, -1)})$`).test(site.path);
  return site.name === target || site.path === target || site.path.endsWith(`.${target}`);
}

/**
 * The sites each target selects, per layer: `grid[p][l]` is target p's layer in block l.
 * Tensor constructions need exactly one same-shaped layer per target and block.
 */
export function resolveTargets(sites: LinearSite[], targets: string[], layers: number): LinearSite[][] {
  const unmatched = targets.filter((t) => !sites.some((s) => siteMatches(s, t)));
  if (unmatched.length) {
    const names = [...new Set(sites.map((s) => s.name))];
    throw new TargetNotFoundError(
      `target modules ${unmatched.map((t) => `"${t}"`).join(", ")} match no linear layer of the model ` +
        `(targets: ${targets.join(", ")}). Available names: ${names.join(", ")}; or a full path such as "${sites[0]?.path}".`,
    );
  }
  return targets.map((t) =>
    Array.from({ length: layers }, (_, l) => {
      const hits = sites.filter((s) => s.layer === l && siteMatches(s, t));
      if (hits.length !== 1) {
        throw new ShapeError(
          `target "${t}" must select exactly one linear layer in block ${l}, found ${hits.length} (${hits.map((h) => h.path).join(", ") || "none"}); use a more specific name`,
        );
      }
      return hits[0];
    }),
  );
}
