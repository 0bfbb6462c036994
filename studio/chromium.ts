/** Debian's Chromium as the tests and the benchmark start it (playwright-core, no browser download). */
export const CHROMIUM = "/usr/bin/chromium";

/** What a headless Chromium needs on a machine with no network and no GPU; WebGPU runs on SwiftShader. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--enable-unsafe-webgpu",
  "--use-webgpu-adapter=swiftshader",
];
