/**
 * A static file server for the studio on loopback. It sends the cross-origin isolation headers
 * (COOP/COEP) so onnxruntime-web may use WebAssembly threads; a plain static host works too,
 * with one thread. A request it cannot read (a malformed %-escape, a NUL) gets 400 and the
 * server keeps serving; only regular files under the root are sent.
 */
import { createReadStream, statSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { extname, join, normalize, resolve, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".map": "application/json",
};

/** The URL's path decoded, or undefined when it does not decode to a file-system-safe string. */
function requestPath(url: string | undefined): string | undefined {
  try {
    const path = decodeURIComponent(new URL(url ?? "/", "http://x").pathname);
    return path.includes("\0") ? undefined : path;
  } catch {
    return undefined; // URIError: a malformed %-escape; TypeError: an unparsable URL
  }
}

/** The size of a regular file at `file`, or undefined (absent, a folder, a FIFO, unreadable). */
function fileSize(file: string): number | undefined {
  try {
    const st = statSync(file);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

export function serveStudio(root: string, port = 0, host = "127.0.0.1"): Promise<{ server: Server; url: string }> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    const path = requestPath(req.url);
    if (path === undefined) {
      res.writeHead(400, { "content-type": "text/plain" }).end("bad request: the path does not decode\n");
      return;
    }
    const file = normalize(join(base, path.endsWith("/") ? `${path}index.html` : path));
    const size = file.startsWith(base + sep) ? fileSize(file) : undefined;
    if (size === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}\n`);
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": size,
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
      "cache-control": "no-cache",
    });
    // a file removed or made unreadable between stat and open ends this response, not the server
    createReadStream(file)
      .on("error", () => res.destroy())
      .pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const addr = server.address();
      const p = typeof addr === "object" && addr ? addr.port : port;
      resolve({ server, url: `http://${host}:${p}/` });
    });
  });
}
