/**
 * A loopback HTTP server that answers like the Hugging Face Hub for the calls a download makes:
 * `GET /api/models/<repo>/revision/<rev>` (commit and file list), and
 * `GET /<repo>/resolve/<rev>/<file>` with Range (`bytes=0-0` probes for size and etag, `bytes=N-`
 * resumes). A file can misbehave the ways a hostile or broken server does: declare another size,
 * send more than it declared, stall, cut the connection, redirect, or carry a forged etag.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface FakeFile {
  body: Buffer;
  /** Size the server declares (default: the body's). */
  declared?: number;
  /** Default: sha256 of the body (an LFS etag). */
  etag?: string;
  /** How a transfer (not the size probe) behaves. */
  mode?: "more" | "stall" | "cut" | "cut-once" | "ignore-range" | "drip";
  /** Answer transfers with a 302 to this location. */
  redirect?: string;
}

export interface FakeRepo {
  sha: string;
  files: Record<string, FakeFile>;
}

export interface Hit {
  url: string;
  range?: string;
  auth?: string;
}

export const SHA = "0123456789abcdef0123456789abcdef01234567";

export function fixtureRepo(dir: string, sha = SHA): FakeRepo {
  return { sha, files: Object.fromEntries(readdirSync(dir).map((f) => [f, { body: readFileSync(join(dir, f)) }])) };
}

export interface FakeHub {
  url: string;
  hits: Hit[];
  server: Server;
  close(): Promise<void>;
}

/** Serve `repos` ({ "org/name": repo }) on 127.0.0.1. */
export function fakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const hits: Hit[] = [];
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "";
    hits.push({ url, range: req.headers.range, auth: req.headers.authorization });
    const api = /^\/api\/models\/(.+?)\/revision\/([^?]+)/.exec(url);
    if (api) {
      const repo = repos[decodeURIComponent(api[1])];
      if (!repo) return void res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "Repository not found" }));
      const body = JSON.stringify({ _id: "x", id: api[1], sha: repo.sha, siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })) });
      return void res.writeHead(200, { "content-type": "application/json" }).end(body);
    }
    const m = /^\/(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(url.split("?")[0]);
    const repo = m && repos[m[1]];
    const name = m && decodeURIComponent(m[3]);
    const file = repo && name !== null ? repo.files[name] : undefined;
    if (!file) return void res.writeHead(404, { "x-error-code": "EntryNotFound" }).end("not found");
    const declared = file.declared ?? file.body.length;
    const etag = file.etag ?? createHash("sha256").update(file.body).digest("hex");
    const headers = { etag: `"${etag}"`, "x-linked-etag": `"${etag}"`, "accept-ranges": "bytes" };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range && range[2] === "0") {
      return void res.writeHead(206, { ...headers, "content-range": `bytes 0-0/${declared}`, "content-length": 1 }).end(file.body.subarray(0, 1));
    }
    if (file.redirect) return void res.writeHead(302, { location: file.redirect }).end();
    const start = range && file.mode !== "ignore-range" ? Number(range[1]) : 0;
    const rest = file.body.subarray(start);
    if (start > 0) res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${declared - 1}/${declared}` });
    else res.writeHead(200, headers);
    const half = rest.subarray(0, Math.max(1, rest.length >> 1));
    switch (file.mode) {
      case "more": {
        // the body, then junk until the client hangs up (bounded, so the server never loops forever)
        res.write(rest);
        let sent = 0;
        const junk = Buffer.alloc(1 << 16, 7);
        const pump = () => {
          while (sent < 256 << 20 && !res.destroyed) {
            sent += junk.length;
            if (!res.write(junk)) return void res.once("drain", pump);
          }
          res.end();
        };
        return pump();
      }
      case "stall":
        return void res.write(half); // and never more
      case "drip": {
        // one byte every 20 ms: never silent long enough to stall, far below any useful rate
        let at = 0;
        const tick = setInterval(() => {
          if (res.destroyed || at >= rest.length) {
            clearInterval(tick);
            res.end();
            return;
          }
          res.write(rest.subarray(at, ++at));
        }, 20);
        return;
      }
      case "cut":
        res.write(half);
        return void setTimeout(() => res.socket?.destroy(), 20);
      case "cut-once":
        if (start === 0) {
          res.write(half);
          return void setTimeout(() => res.socket?.destroy(), 20);
        }
        return void res.end(rest);
      default:
        return void res.end(rest);
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        hits,
        server,
        close: () => {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      }),
    ),
  );
}
