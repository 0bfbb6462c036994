/**
 * `tenslora download` and `--model org/name` as a user runs them, against a loopback Hub
 * (test/hub-server.ts) through HF_ENDPOINT, with HF_HOME and the tenslora cache inside a temp
 * root: a hostile server cannot write outside the cache, cannot fill the disk, cannot hang the
 * command, and a cut connection is one line. A downloaded repo id then works offline.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type CliResult, assertOk, assertUserError, cliAsync } from "./cli-helpers.ts";
import { SHA, fakeHub, fixtureRepo } from "./hub-server.ts";
import { cliEnv, tempDir, writePng, classImage } from "./make-data.ts";
import { Rng } from "../src/tensor/random.ts";

const FIXTURE = "test/fixtures/hf-tiny/vit";

function run(args: string[], root: string, endpoint: string, timeoutMs = 120_000): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...cliEnv(join(root, "tenslora-cache")), HF_ENDPOINT: endpoint, HF_HOME: join(root, "hf") };
  delete env.HF_HUB_CACHE;
  delete env.HUGGINGFACE_HUB_CACHE;
  delete env.HF_TOKEN;
  return cliAsync(args, timeoutMs, env);
}

const files = (dir: string) => readdirSync(dir, { recursive: true }) as string[];

test("download: an index shard named `payload?/../../…` and a repo id `../escaped` write nothing outside the cache", async () => {
  const root = tempDir();
  const evil = "payload?/../../../../escaped.txt";
  const repo = fixtureRepo(FIXTURE);
  delete repo.files["model.safetensors"];
  repo.files["model.safetensors.index.json"] = { body: Buffer.from(JSON.stringify({ weight_map: { "vit.embeddings.cls_token": evil } })) };
  repo.files.payload = { body: Buffer.from("owned") };
  const hub = await fakeHub({ "tiny/vit": repo, escaped: fixtureRepo(FIXTURE) });
  try {
    assertUserError(await run(["download", "tiny/vit"], root, hub.url), /index/, "hostile shard name");
    assertUserError(await run(["download", "../escaped"], root, hub.url), /not a Hub repository id/, "repo id with ..");
    const escaped = files(root).filter((p) => p.includes("escaped"));
    assert.deepEqual(escaped, [], "no file named by the server outside its place");
  } finally {
    await hub.close();
  }
});

test("download: more bytes than declared, a stall and a cut connection each end in one line, with no partial or complete-looking file", async () => {
  const root = tempDir();
  const more = fixtureRepo(FIXTURE);
  more.files["model.safetensors"].mode = "more";
  const stall = fixtureRepo(FIXTURE);
  stall.files["model.safetensors"].mode = "stall";
  const cut = fixtureRepo(FIXTURE);
  cut.files["model.safetensors"].mode = "cut";
  const hub = await fakeHub({ "hostile/more": more, "hostile/stall": stall, "hostile/cut": cut });
  try {
    assertUserError(await run(["download", "hostile/more"], root, hub.url), /more than the \d+ bytes it declared/, "more than declared");
    assert.deepEqual(
      files(root).filter((p) => /\.(part|incomplete)/.test(p)),
      [],
      "no partial file after an over-long body",
    );
    assertUserError(await run(["download", "hostile/stall", "--stall-timeout", "0.5"], root, hub.url), /sent nothing for 0\.5 s/, "stall");
    assertUserError(await run(["download", "hostile/cut"], root, hub.url), /connection .* was cut after \d+ bytes/, "cut connection");
    const snapshots = files(root).filter((p) => p.endsWith("model.safetensors"));
    assert.deepEqual(snapshots, [], "no folder holds weights as if complete");
  } finally {
    await hub.close();
  }
});

test("--model org/name: downloaded once, then found in the Hugging Face cache with the Hub unreachable", async () => {
  const root = tempDir();
  const hub = await fakeHub({ "tiny/vit": fixtureRepo(FIXTURE) });
  const got = await run(["download", "tiny/vit"], root, hub.url);
  await hub.close();
  assertOk(got, "download");
  assert.equal(got.stdout.trim(), join(root, "hf", "hub", "models--tiny--vit", "snapshots", SHA));
  const png = join(root, "x.png");
  const size = JSON.parse(readFileSync(join(FIXTURE, "config.json"), "utf8")).image_size as number;
  await writePng(png, classImage(0, size, new Rng(1)), size);
  const offline = await run(["infer", "--model", "tiny/vit", "--images", png, "--json"], root, hub.url);
  assertOk(offline, "infer with a cached repo id and no server");
  assert.equal(JSON.parse(offline.stdout.trim().split("\n")[0]).input, png);
  assertUserError(
    await run(["infer", "--model", "tiny/absent", "--images", png], root, hub.url),
    /tiny\/absent.*ECONNREFUSED|tiny\/absent.*download/,
    "uncached repo id, no server",
  );
  assert.ok(!existsSync(join(root, "tenslora-cache", "models")));
});
