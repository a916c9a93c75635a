/**
 * A tiny real HTTP change feed on 127.0.0.1, for tests and the demo: the source a scheduled sync
 * reads targets changed since a cursor from.
 *
 *   GET /?since=C  ->  200 {"targets": [...pushed after C], "cursor": "<count pushed so far>"}
 *
 * The cursor is the number of targets pushed so far, as a string; without `since` the feed answers
 * from the start. A `since` that is not a cursor this feed gave is answered 400. `failNext` injects
 * error statuses into the next GETs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './http.ts';

/** One request to the feed, in arrival order. */
export interface ChangeFeedRequest {
  method: string;
  /** The `since` query parameter, when one was sent. */
  since?: string;
  /** Status sent. */
  status: number;
  /** How many targets the answer carried (0 for an error). */
  count: number;
}

export interface ChangeFeed {
  /** The feed's URL, e.g. http://127.0.0.1:41234/ (query parameters are added by the reader). */
  url: string;
  /** Appends changed targets: the next GET from an earlier cursor returns them. */
  push(targets: unknown[]): void;
  /** Answers the next `n` GETs with `status` (400-599, default 503) instead of the changes; calls queue up. */
  failNext(n: number, status?: number): void;
  /** The cursor a GET would answer with now. */
  readonly cursor: string;
  /** Live array of every request, in arrival order. */
  requests: ChangeFeedRequest[];
  close(): Promise<void>;
}

function send(res: ServerResponse, record: ChangeFeedRequest, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  record.status = status;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(payload.length) });
  res.end(record.method === 'HEAD' ? undefined : payload);
}

const error = (status: number, message: string) => ({ error: { code: `http_${status}`, message } });

export async function startChangeFeed(): Promise<ChangeFeed> {
  const pushed: unknown[] = [];
  const failures: number[] = [];
  const requests: ChangeFeedRequest[] = [];

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://feed');
    const since = url.searchParams.get('since');
    const record: ChangeFeedRequest = {
      method: req.method ?? 'GET',
      ...(since !== null ? { since } : {}),
      status: 0,
      count: 0,
    };
    requests.push(record);
    if (record.method !== 'GET' && record.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, record, 405, error(405, `Use GET, not ${record.method}.`));
      return;
    }
    const failure = record.method === 'GET' ? failures.shift() : undefined;
    if (failure !== undefined) {
      send(res, record, failure, error(failure, `Injected HTTP ${failure}.`));
      return;
    }
    const from = since === null || since === '' ? 0 : Number(since);
    if (!Number.isInteger(from) || from < 0 || from > pushed.length || !/^\d*$/.test(since ?? '')) {
      send(res, record, 400, error(400, `since=${since} is not a cursor this feed gave (0..${pushed.length}).`));
      return;
    }
    const targets = pushed.slice(from);
    record.count = targets.length;
    send(res, record, 200, { targets, cursor: String(pushed.length) });
  };

  const server = createServer(handle);
  const { port, close } = await listenOnLoopback(server, 0);
  return {
    url: `http://127.0.0.1:${port}/`,
    push(targets) {
      pushed.push(...targets);
    },
    failNext(n, status = 503) {
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
      if (!Number.isInteger(status) || status < 400 || status > 599) {
        throw new RangeError(`status must be an HTTP error status (400-599), got ${status}`);
      }
      for (let i = 0; i < n; i += 1) failures.push(status);
    },
    get cursor() {
      return String(pushed.length);
    },
    requests,
    close,
  };
}
