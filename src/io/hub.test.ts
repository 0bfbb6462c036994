// The Hub download against a loopback server that serves a repository like the Hub does.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel } from "../models/load.ts";
import { DownloadError, downloadModel } from "./hub.ts";

const FIXTURE = "test/fixtures/hf-tiny/vit";

function serve(): Promise<{ server: Server; endpoint: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? "");
    const m = /^\/tiny\/vit\/resolve\/main\/([\w.-]+)$/.exec(req.url ?? "");
    const file = m && readdirSync(FIXTURE).includes(m[1]) ? join(FIXTURE, m[1]) : undefined;
    if (!file) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200).end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits })));
}

test("downloadModel fetches config and weights into a folder loadModel reads, skipping absent optional files", async () => {
  const { server, endpoint, hits } = await serve();
  try {
    const dir = join(mkdtempSync(join(tmpdir(), "hub-")), "vit");
    await downloadModel("tiny/vit", dir, { endpoint });
    assert.deepEqual(readdirSync(dir).sort(), ["config.json", "model.safetensors"]);
    assert.deepEqual(readFileSync(join(dir, "model.safetensors")), readFileSync(join(FIXTURE, "model.safetensors")));
    assert.equal(loadModel(dir).family.modelType, "vit");
    const before = hits.length;
    await downloadModel("tiny/vit", dir, { endpoint });
    assert.ok(hits.length - before < before, "files already on disk are not fetched again");
  } finally {
    server.close();
  }
});

test("downloadModel names the host when it cannot be reached, and rejects a malformed repo id", async () => {
  const { server, endpoint } = await serve();
  server.close();
  const dir = mkdtempSync(join(tmpdir(), "hub-"));
  await assert.rejects(downloadModel("tiny/vit", dir, { endpoint }), (e: Error) => e instanceof DownloadError && /cannot reach 127\.0\.0\.1/.test(e.message));
  await assert.rejects(downloadModel("../etc", dir, { endpoint }), DownloadError);
});
