/**
 * System files some tests need, each with the Debian package that provides it. Where one is
 * missing the test is skipped with the install command, except under CI (`CI` set), where
 * .ci/run installs them: there a missing package fails the suite instead of hiding behind a skip.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export type SystemDep = { readonly pkg: string } & ({ readonly file: string } | { readonly library: string });

const sharedLibraries = (() => {
  let cache: string | undefined;
  return () => (cache ??= spawnSync("ldconfig", ["-p"], { encoding: "utf8" }).stdout ?? "");
})();

const present = (d: SystemDep) => ("file" in d ? existsSync(d.file) : sharedLibraries().includes(`${d.library} `));
const what = (d: SystemDep) => ("file" in d ? d.file : `the shared library ${d.library}`);

/** A `skip` option for the tests that need `deps`: false when all are present. */
export function needs(...deps: SystemDep[]): string | false {
  const missing = deps.filter((d) => !present(d));
  if (missing.length === 0) return false;
  const fix = `apt-get install -y ${[...new Set(missing.map((d) => d.pkg))].join(" ")}`;
  const message = `${missing.map(what).join(" and ")} missing: \`${fix}\` (.ci/run installs it)`;
  if (process.env.CI) test("the Debian packages these tests need are installed", () => assert.fail(message));
  return message;
}

export const CHROMIUM_DEP = { file: "/usr/bin/chromium", pkg: "chromium" } as const satisfies SystemDep;
export const SWIFTSHADER_DEP = { file: "/usr/lib/chromium/vk_swiftshader_icd.json", pkg: "chromium" } as const satisfies SystemDep;
export const VULKAN_LOADER_DEP = { library: "libvulkan.so.1", pkg: "libvulkan1" } as const satisfies SystemDep;
