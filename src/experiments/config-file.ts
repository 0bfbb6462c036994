/** A run's JSON config file (run-config.ts applies its keys). */
import { ConfigError } from "../errors.ts";
import { readJsonFile } from "../io/checkpoint.ts";

/** Read a run's JSON config file (`--config`) as an object of settings; `applyConfig` checks the keys. */
export function loadConfigFile(path: string): Record<string, unknown> {
  const raw = readJsonFile(path, "run config");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(`${path} must hold a JSON object of run settings`);
  return raw as Record<string, unknown>;
}
