/**
 * Which linear layers an adapter covers, by PEFT's rules: `target_modules` as a list of names
 * (a name matches a site whose path equals it or ends with "." + it), one regular expression
 * matched against the whole path, or "all-linear" (every linear layer the model lists: the
 * classifier / LM head is never a site); `layers_to_transform` keeps only those blocks.
 * Regular expressions run on RE2 (re2js): matching time is linear in the path, so no pattern can
 * hang the process.
 */
import { RE2JS } from "re2js";
import { ConfigError, TargetNotFoundError } from "../errors.ts";
import type { LinearSite } from "../nn/sites.ts";

/** The target-modules value that selects every linear layer of the blocks (PEFT's spelling). */
export const ALL_LINEAR = "all-linear";

/** PEFT's target_modules: names, or one string that is "all-linear" or a whole-path regex. */
export type TargetModules = readonly string[] | string;

/** The linear sites an adapter applies to, as `selectSites` resolves them. */
export interface Targets {
  modules: TargetModules;
  /** PEFT's layers_to_transform: block indices; all blocks when absent. */
  layers?: readonly number[];
}

type Matcher = (site: LinearSite) => boolean;

function regexMatcher(source: string): Matcher {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ConfigError(`target_modules regex "${source}" is not a valid regular expression (${why}); escape ( ) [ ] . + * ? or give module names instead`);
  }
  return (site) => re.matches(site.path);
}

/** A list entry: a name or path suffix, or "/regex/" (a whole-path regex inside a list). */
function entryMatcher(entry: string): Matcher {
  if (entry.length > 2 && entry.startsWith("/") && entry.endsWith("/")) return regexMatcher(entry.slice(1, -1));
  return (site) => site.name === entry || site.path === entry || site.path.endsWith(`.${entry}`);
}

function available(sites: LinearSite[]): string {
  const names = [...new Set(sites.map((s) => s.name))];
  return `Available names: ${names.join(", ")}; or "${ALL_LINEAR}", a full path such as "${sites[0]?.path}", or a regex`;
}

function describe(modules: TargetModules): string {
  return typeof modules === "string" ? `"${modules}"` : `[${modules.map((m) => `"${m}"`).join(", ")}]`;
}

/** The sites the targets select, in the model's order; anything that selects nothing is an error. */
export function selectSites(sites: LinearSite[], targets: Targets): LinearSite[] {
  const { modules } = targets;
  let selected: LinearSite[];
  if (modules === ALL_LINEAR) selected = [...sites];
  else if (typeof modules === "string") {
    const m = regexMatcher(modules);
    selected = sites.filter(m);
  } else {
    if (modules.length === 0) throw new TargetNotFoundError(`target_modules is empty; name at least one linear layer. ${available(sites)}`);
    const matchers = modules.map(entryMatcher);
    const unmatched = modules.filter((_, i) => !sites.some(matchers[i]));
    if (unmatched.length) {
      throw new TargetNotFoundError(`target modules ${unmatched.map((t) => `"${t}"`).join(", ")} match no linear layer of the model. ${available(sites)}`);
    }
    selected = sites.filter((s) => matchers.some((m) => m(s)));
  }
  if (targets.layers) {
    const blocks = [...new Set(sites.map((s) => s.layer))].sort((a, b) => a - b);
    for (const l of targets.layers) {
      if (!blocks.includes(l)) {
        throw new ConfigError(`layers_to_transform: block ${l} does not exist; the model has blocks ${blocks[0]}…${blocks[blocks.length - 1]}`);
      }
    }
    const keep = new Set(targets.layers);
    selected = selected.filter((s) => keep.has(s.layer));
  }
  if (selected.length === 0) {
    const where = targets.layers ? ` in blocks [${targets.layers.join(", ")}]` : "";
    throw new TargetNotFoundError(`target_modules ${describe(modules)} select no linear layer${where}. ${available(sites)}`);
  }
  return selected;
}

/** The CLI's --target-modules text: "all-linear", "/regex/", or comma-separated names. */
export function parseTargetModules(text: string): TargetModules {
  const t = text.trim();
  if (t === ALL_LINEAR) return ALL_LINEAR;
  if (t.length > 2 && t.startsWith("/") && t.endsWith("/")) return t.slice(1, -1);
  const names = t
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length)
    throw new ConfigError(
      `--target-modules ${JSON.stringify(text)} names no layer; give names (e.g. query,value), all-linear or /regex/, or drop the flag for the default q, k, v`,
    );
  return names;
}
