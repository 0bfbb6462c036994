/**
 * The `fetch` handed to `@huggingface/hub`, and used for the file transfers themselves. The
 * library follows redirects blindly and reads bodies without a stall timeout or a size cap; here
 * every redirect is checked (http(s) only, never https → http, at most 5, credentials dropped on
 * another origin), no byte may take longer than `stallMs` to arrive (headers included), each
 * `stallMs` window must bring `minBytesPerSec` on average (a server dripping a byte a second never
 * stalls), nothing may run past `deadline`, a body may not exceed `maxBytes`, and every failure
 * is a one-line DownloadError.
 */
import { DownloadError } from "./hub-cache.ts";

export interface GuardOptions {
  /** Abort when no byte (or no response header) arrives for this long. */
  stallMs: number;
  /** Most body bytes one response may carry. */
  maxBytes?: number;
  /** Least average rate over each `stallMs` window of a body. */
  minBytesPerSec?: number;
  /** Epoch milliseconds past which the transfer is aborted (a whole download's deadline). */
  deadline?: number;
  /** Called with the number of body bytes read so far. */
  onBytes?: (n: number) => void;
}

const MAX_REDIRECTS = 5;

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** A `fetch` with the guards above; `limits(url)` may tighten them per request. */
export function guardedFetch(base: GuardOptions, limits: (url: string) => Partial<GuardOptions> = () => ({})): typeof fetch {
  return (async (input: RequestInfo | URL, init: RequestInit = {}) => {
    let url = String(input instanceof Request ? input.url : input);
    const o = { ...base, ...limits(url) };
    const headers = new Headers(init.headers);
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    const disarm = () => {
      clearTimeout(timer);
      clearTimeout(deadlineTimer);
    };
    if (o.deadline !== undefined) {
      const late = new DownloadError(
        `${hostOf(url)}: the download passed its deadline; run the same command again to resume, or allow more time with --deadline`,
      );
      if (Date.now() >= o.deadline) throw late;
      deadlineTimer = setTimeout(() => ac.abort(late), o.deadline - Date.now());
      deadlineTimer.unref();
    }
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => ac.abort(new DownloadError(`${hostOf(url)} sent nothing for ${o.stallMs / 1000} s; run the same command again to resume`)),
        o.stallMs,
      );
      // a body nobody reads (the library's size probe) must not keep the process alive
      timer.unref();
    };
    const fail = (e: unknown, what: string): never => {
      disarm();
      if (ac.signal.aborted && ac.signal.reason instanceof DownloadError) throw ac.signal.reason;
      if (e instanceof DownloadError) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new DownloadError(
        `${what} ${hostOf(url)} failed (${cause?.code ?? cause?.message ?? (e as Error).message}); check the network or HF_ENDPOINT, or pass a model folder on disk`,
      );
    };
    let res: Response | undefined;
    for (let hop = 0; ; hop++) {
      arm();
      try {
        res = await fetch(url, { ...init, headers, redirect: "manual", signal: ac.signal });
      } catch (e) {
        fail(e, "connecting to");
      }
      if (!res || res.status < 300 || res.status >= 400 || !res.headers.has("location")) break;
      await res.body?.cancel();
      const next = new URL(res.headers.get("location")!, url);
      if (hop >= MAX_REDIRECTS) throw new DownloadError(`${hostOf(url)} redirected more than ${MAX_REDIRECTS} times; refusing to follow`);
      if (next.protocol !== "https:" && next.protocol !== "http:")
        throw new DownloadError(`${hostOf(url)} redirected to a ${next.protocol} URL; only http(s) is followed`);
      if (new URL(url).protocol === "https:" && next.protocol === "http:")
        throw new DownloadError(`${hostOf(url)} redirected from https to plain http (${next.host}); refusing the downgrade`);
      if (next.origin !== new URL(url).origin) headers.delete("authorization");
      url = next.href;
    }
    const body = res!.body;
    const declared = Number(res!.headers.get("content-length") ?? Number.NaN);
    if (o.maxBytes !== undefined && declared > o.maxBytes) {
      disarm();
      await body?.cancel();
      throw new DownloadError(`${hostOf(url)} announces ${declared} bytes where at most ${o.maxBytes} are expected; refusing the transfer`);
    }
    let seen = 0;
    // the rate window: bytes since windowStart, judged once a window of stallMs has passed
    let windowStart = Date.now();
    let windowSeen = 0;
    const reader = body?.getReader();
    const guarded =
      reader &&
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          arm();
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (e) {
            disarm();
            const reason = ac.signal.aborted && ac.signal.reason instanceof DownloadError ? ac.signal.reason : undefined;
            controller.error(
              reason ??
                new DownloadError(
                  `the connection to ${hostOf(url)} was cut after ${seen} bytes (${(e as Error).message}); run the same command again to resume`,
                ),
            );
            return;
          }
          if (chunk.done) {
            disarm();
            controller.close();
            return;
          }
          seen += chunk.value.byteLength;
          windowSeen += chunk.value.byteLength;
          const span = Date.now() - windowStart;
          if (span >= o.stallMs) {
            if (o.minBytesPerSec && windowSeen < (o.minBytesPerSec * span) / 1000) {
              disarm();
              ac.abort();
              controller.error(
                new DownloadError(
                  `${hostOf(url)} sent ${windowSeen} bytes in ${(span / 1000).toFixed(1)} s, below the minimum rate of ${o.minBytesPerSec} bytes/s; run the same command again to resume, or lower --min-rate`,
                ),
              );
              return;
            }
            windowStart = Date.now();
            windowSeen = 0;
          }
          if (o.maxBytes !== undefined && seen > o.maxBytes) {
            disarm();
            ac.abort();
            controller.error(
              new DownloadError(`${hostOf(url)} sent more than the ${o.maxBytes} bytes expected; transfer stopped and its partial file removed`),
            );
            return;
          }
          o.onBytes?.(seen);
          controller.enqueue(chunk.value);
        },
        cancel(reason) {
          disarm();
          return reader.cancel(reason);
        },
      });
    const nullBody = [204, 205, 304].includes(res!.status);
    if (!guarded || nullBody) disarm();
    const out = new Response(nullBody ? null : (guarded ?? null), { status: res!.status, statusText: res!.statusText, headers: res!.headers });
    Object.defineProperty(out, "url", { value: url });
    return out;
  }) as typeof fetch;
}
