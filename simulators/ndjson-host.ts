/**
 * A tiny real HTTP server on 127.0.0.1 that serves NDJSON documents, so tests and the benchmark can
 * give a sync its targets "by URL". Documents live in memory (`put`) or on disk (`putFile`, streamed,
 * never loaded whole). GET honours a single `Range: bytes=…` (206 / 416), HEAD announces the size,
 * and `failNext` injects error statuses into the next GETs.
 */
import { statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './http.ts';
import { pipeline } from 'node:stream/promises';

export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

/** One request to the host, in arrival order. */
export interface NdjsonHostRequest {
  method: string;
  /** The URL path as requested (still percent-encoded, without the query), e.g. "/feed.ndjson". */
  path: string;
  /** The Range header, when one was sent. */
  range?: string;
  /** Status sent; 0 while the answer is being prepared. */
  status: number;
}

export interface NdjsonHost {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Serves `content` (a string is encoded as UTF-8) at `/name`, replacing any earlier document; returns its URL. */
  put(name: string, content: string | Buffer): string;
  /** Serves the file at `path` at `/name`, streamed on each request (its size is read per request); returns its URL. */
  putFile(name: string, path: string): string;
  /**
   * Answers the next `n` GETs (whatever the path) with `status` (400-599, default 503) and a small JSON
   * error body instead of the document; calls queue up. HEAD is never failed.
   */
  failNext(n: number, status?: number): void;
  /** Live array of every request, in arrival order. */
  requests: NdjsonHostRequest[];
  close(): Promise<void>;
}

type Document = { kind: 'memory'; data: Buffer } | { kind: 'file'; path: string };

/** The outcome of a Range header against a document of `size` bytes. */
export type RangeOutcome =
  { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * Supports one range: `bytes=START-END`, `bytes=START-` and the suffix form `bytes=-N`. END past the
 * end is clamped. Other units and multi-range requests are ignored (the whole document is sent), as
 * RFC 9110 allows; a malformed or unsatisfiable byte range is answered 416.
 */
export function parseRange(header: string | undefined, size: number): RangeOutcome {
  if (header === undefined) return { kind: 'full' };
  const spec = /^\s*bytes\s*=\s*(.*)$/i.exec(header)?.[1];
  if (spec === undefined || spec.includes(',')) return { kind: 'full' };
  const match = /^(\d*)-(\d*)\s*$/.exec(spec);
  if (!match || (match[1] === '' && match[2] === '')) return { kind: 'unsatisfiable' };
  const [, first = '', last = ''] = match;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || (last !== '' && Number(last) < start)) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

function nameToPath(name: string): string {
  if (name === '' || name.startsWith('/') || name.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new RangeError(`document name must be non-empty relative path segments, got "${name}"`);
  }
  return `/${name.split('/').map(encodeURIComponent).join('/')}`;
}

/** Writes the status line and headers, recording the status at once (before any body byte). */
function writeHead(
  res: ServerResponse,
  record: NdjsonHostRequest,
  status: number,
  headers: Record<string, string>,
): void {
  record.status = status;
  res.writeHead(status, headers);
}

/** A small JSON error answer `{error: {code: "http_<status>", message}}`. */
function sendError(
  res: ServerResponse,
  record: NdjsonHostRequest,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(JSON.stringify({ error: { code: `http_${status}`, message } }), 'utf8');
  writeHead(res, record, status, {
    'content-type': 'application/json',
    'content-length': String(payload.length),
    ...headers,
  });
  res.end(record.method === 'HEAD' ? undefined : payload);
}

/** A document ready to answer from: a file is opened once, so its size and bytes agree. */
interface OpenedDocument {
  size: number;
  /** Sends bytes start..end (inclusive) and ends the response. */
  send(res: ServerResponse, start: number, end: number): Promise<void>;
  close(): Promise<void>;
}

/** Undefined when a file document is gone or no longer a regular file. */
async function openDocument(doc: Document): Promise<OpenedDocument | undefined> {
  if (doc.kind === 'memory') {
    return {
      size: doc.data.length,
      send: (res, start, end) => {
        res.end(doc.data.subarray(start, end + 1));
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    };
  }
  let handle: FileHandle;
  try {
    handle = await open(doc.path, 'r');
  } catch {
    return undefined;
  }
  const info = await handle.stat().catch(() => undefined);
  if (!info?.isFile()) {
    await handle.close();
    return undefined;
  }
  let streaming = false;
  return {
    size: info.size,
    async send(res, start, end) {
      streaming = true; // the stream closes the handle when it ends or fails
      await pipeline(handle.createReadStream({ start, end, autoClose: true }), res);
    },
    async close() {
      if (!streaming) await handle.close();
    },
  };
}

/** The stored key for a requested path: percent-encoding normalised (e.g. %41 vs A); undefined when malformed. */
function documentKey(rawPath: string): string | undefined {
  try {
    return `/${rawPath.slice(1).split('/').map(decodeURIComponent).map(encodeURIComponent).join('/')}`;
  } catch {
    return undefined;
  }
}

export async function startNdjsonHost(): Promise<NdjsonHost> {
  const documents = new Map<string, Document>();
  const requests: NdjsonHostRequest[] = [];
  const failures: number[] = [];

  async function handle(res: ServerResponse, record: NdjsonHostRequest): Promise<void> {
    const { method } = record;
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(res, record, 405, `Use GET or HEAD, not ${method}.`, { allow: 'GET, HEAD' });
      return;
    }
    const failure = method === 'GET' ? failures.shift() : undefined;
    if (failure !== undefined) {
      sendError(res, record, failure, `Injected HTTP ${failure}.`);
      return;
    }
    const key = documentKey(record.path);
    if (key === undefined) {
      sendError(res, record, 400, 'Malformed percent-encoding in the path.');
      return;
    }
    const doc = documents.get(key);
    const opened = doc && (await openDocument(doc));
    if (!opened) {
      sendError(res, record, 404, `No document at ${record.path}.`);
      return;
    }
    try {
      await answer(res, record, opened);
    } finally {
      await opened.close();
    }
  }

  async function answer(res: ServerResponse, record: NdjsonHostRequest, opened: OpenedDocument): Promise<void> {
    const { method } = record;
    const { size } = opened;

    const common = { 'content-type': NDJSON_CONTENT_TYPE, 'accept-ranges': 'bytes' };
    // Range handling is defined for GET only: HEAD announces the whole document.
    const range = method === 'GET' ? parseRange(record.range, size) : ({ kind: 'full' } as const);
    if (range.kind === 'unsatisfiable') {
      sendError(res, record, 416, `Range "${record.range ?? ''}" is not satisfiable for ${size} bytes.`, {
        'accept-ranges': 'bytes',
        'content-range': `bytes */${size}`,
      });
      return;
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : size - 1;
    const length = end - start + 1;
    const status = range.kind === 'partial' ? 206 : 200;
    writeHead(res, record, status, {
      ...common,
      'content-length': String(length),
      ...(range.kind === 'partial' ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    await opened.send(res, start, end);
  }

  const server = createServer((req, res) => {
    const range = req.headers.range;
    const record: NdjsonHostRequest = {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      ...(range === undefined ? {} : { range }),
      status: 0,
    };
    requests.push(record);
    handle(res, record).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, record, 500, error instanceof Error ? error.message : String(error));
      // Otherwise the client hung up or the file failed mid-stream: the cut body says so.
      else res.destroy();
    });
  });
  const { port, close } = await listenOnLoopback(server, 0);
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    requests,
    put(name, content) {
      const path = nameToPath(name);
      documents.set(path, {
        kind: 'memory',
        // A copy: a caller reusing its buffer must not change what is served.
        data: typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content),
      });
      return `${url}${path}`;
    },
    putFile(name, file) {
      const path = nameToPath(name);
      // Fail at the call site for a typo, not later as a 404 in the middle of a sync.
      if (!statSync(file).isFile()) throw new Error(`not a regular file: ${file}`);
      documents.set(path, { kind: 'file', path: file });
      return `${url}${path}`;
    },
    failNext(n, status = 503) {
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
      if (!Number.isInteger(status) || status < 400 || status > 599) {
        throw new RangeError(`status must be an HTTP error status (400-599), got ${status}`);
      }
      for (let i = 0; i < n; i++) failures.push(status);
    },
    close,
  };
}
