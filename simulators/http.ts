/**
 * Generic HTTP plumbing shared by the provider simulators: the server lifecycle, body reading,
 * recording, transport faults (delay, reset, truncate, status) and the `/_sim/*` control routes.
 * A provider supplies only how to check a key, its default error bodies and its real answer.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { z } from 'zod';
import { listenOnLoopback } from '../temporal/loopback.ts';
import { describeFault, FaultInjector, parseFaultControl, type Fault, type RecordedRequest } from './faults.ts';

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  /** Serialized as JSON unless it is a string, which is sent as is (e.g. a proxy's HTML page). */
  body: unknown;
}

export interface ApiRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  /** The parsed JSON body, or undefined when the body is not JSON. */
  json: unknown;
  /** Whether `json` holds a parsed body (JSON `null` is a valid body). */
  jsonOk: boolean;
  raw: string;
}

export interface SimServerOptions {
  port: number;
  latencyMs: number;
  /** The one path that is recorded and takes faults, e.g. "/v1/products/refresh". */
  apiPath: string;
  /** Bodies above this size are answered 413 without being parsed. */
  maxBodyBytes?: number;
  keyValid(headers: IncomingMessage['headers']): boolean;
  /** The provider's body for an injected status fault without its own body. */
  statusFaultBody(status: number): unknown;
  /** The provider's real answer. `fault` is passed on for faults the provider interprets itself. */
  answer(request: ApiRequest, fault: Fault | null): Reply;
}

export interface SimServer {
  url: string;
  faults: FaultInjector;
  requests: RecordedRequest[];
  reset(): void;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024;

/** "targets[3].uuid: message; …" — names the offending fields so the caller can fix them. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], max = 3): string {
  const parts = issues.slice(0, max).map((issue) => {
    const path = issue.path.reduce<string>(
      (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
      '',
    );
    const message = issue.message.replace(/\.$/, '');
    return path && !message.startsWith(path) ? `${path}: ${message}` : message;
  });
  const more = issues.length > max ? ` (and ${issues.length - max} more)` : '';
  return `${parts.join('; ')}${more}.`;
}

export function jsonError(status: number, code: string, message: string): Reply {
  return { status, body: { error: { code, message } } };
}

/** Reply for an injected status fault; 429 carries the rate-limit headers a real gateway sends. */
export function statusFaultReply(
  fault: Extract<Fault, { kind: 'status' }>,
  defaultBody: (status: number) => unknown,
): Reply {
  const headers: Record<string, string> = {};
  if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
  if (fault.status === 429) {
    const resetSeconds = Number(fault.retryAfter);
    headers['x-ratelimit-limit'] = '60';
    headers['x-ratelimit-remaining'] = '0';
    headers['x-ratelimit-reset'] = String(Number.isFinite(resetSeconds) ? resetSeconds : 60);
  }
  return {
    status: fault.status,
    headers,
    body: fault.body === undefined ? defaultBody(fault.status) : fault.body,
  };
}

/** Generic error codes for statuses a provider has no specific body for. */
export function genericStatusBody(status: number): unknown {
  const known: Record<number, [string, string]> = {
    429: ['rate_limit_exceeded', 'Rate limit exceeded; retry after the Retry-After period.'],
    500: ['internal_error', 'Internal server error.'],
    502: ['bad_gateway', 'Bad gateway.'],
    503: ['service_unavailable', 'Service temporarily unavailable.'],
    504: ['gateway_timeout', 'Gateway timeout.'],
  };
  const [code, message] = known[status] ?? [`http_${status}`, `Injected HTTP ${status}.`];
  return { error: { code, message } };
}

async function readBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ raw: string; bytes: number; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  // Keep draining past the limit (without storing) so the client sees our answer, not a reset.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= limit) chunks.push(chunk);
  }
  const tooLarge = bytes > limit;
  return { raw: tooLarge ? '' : Buffer.concat(chunks).toString('utf8'), bytes, tooLarge };
}

function parseJson(raw: string): { json: unknown; jsonOk: boolean } {
  try {
    return { json: JSON.parse(raw) as unknown, jsonOk: true };
  } catch {
    return { json: undefined, jsonOk: false };
  }
}

function encode(reply: Reply): { payload: Buffer; headers: Record<string, string> } {
  const isText = typeof reply.body === 'string';
  const payload = Buffer.from(isText ? (reply.body as string) : JSON.stringify(reply.body), 'utf8');
  return {
    payload,
    headers: {
      'content-type': isText ? 'text/plain; charset=utf-8' : 'application/json',
      'content-length': String(payload.length),
      ...reply.headers,
    },
  };
}

function send(res: ServerResponse, reply: Reply, truncate = false): void {
  if (res.destroyed) return;
  const { payload, headers } = encode(reply);
  res.writeHead(reply.status, headers);
  if (!truncate) {
    res.end(payload);
    return;
  }
  // Content-Length still announces the full body, so the client notices the cut.
  res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => res.socket?.destroy());
}

function resetSocket(socket: Socket | null): void {
  if (!socket) return;
  // A TCP RST (ECONNRESET) is closer to a real network failure than a clean FIN.
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

// Production code (the codec server) listens the same way: the helper lives with it.
export { listenOnLoopback };

export async function startSimServer(options: SimServerOptions): Promise<SimServer> {
  const faults = new FaultInjector();
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  // Timers are tracked so close() never waits for a pending delay fault.
  const sleep = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            resolve();
          }, ms);
          timers.add(timer);
        });

  const reset = (): void => {
    requests.length = 0; // in place: callers may hold the array
    faults.clear();
  };

  async function handleApi(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const body = await readBody(req, maxBodyBytes);
    const { json, jsonOk } = parseJson(body.raw);
    const record: RecordedRequest = {
      at: Date.now(),
      method,
      path,
      keyValid: options.keyValid(req.headers),
      body: body.tooLarge ? `[${body.bytes} bytes, over the ${maxBodyBytes} byte limit]` : jsonOk ? json : body.raw,
      status: 0,
    };
    const fault = faults.next();
    if (fault) record.fault = describeFault(fault);
    requests.push(record);

    await sleep(options.latencyMs + (fault?.kind === 'delay' ? fault.ms : 0));
    if (fault?.kind === 'reset') {
      resetSocket(req.socket);
      return;
    }

    let reply: Reply;
    if (fault?.kind === 'status') reply = statusFaultReply(fault, options.statusFaultBody);
    else if (method !== 'POST') {
      reply = jsonError(405, 'method_not_allowed', `Use POST for ${options.apiPath}.`);
      reply.headers = { allow: 'POST' };
    } else if (body.tooLarge) {
      reply = jsonError(413, 'payload_too_large', `Request body exceeds ${maxBodyBytes} bytes.`);
    } else reply = options.answer({ method, path, headers: req.headers, json, jsonOk, raw: body.raw }, fault);

    record.status = reply.status;
    send(res, reply, fault?.kind === 'truncate');
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? 'GET';
    const { raw } = await readBody(req, maxBodyBytes);
    if (path === '/_sim/faults' && method === 'POST') {
      const { json, jsonOk } = parseJson(raw);
      const parsed = parseFaultControl(json);
      if (!jsonOk || !parsed.success) {
        const message = parsed.success || !jsonOk ? 'Body is not valid JSON.' : describeIssues(parsed.error.issues);
        send(res, jsonError(422, 'invalid_request', message));
        return;
      }
      faults.apply(parsed.data);
      send(res, { status: 200, body: { ok: true, pending: faults.pending } });
    } else if (path === '/_sim/faults' && method === 'DELETE') {
      faults.clear();
      send(res, { status: 200, body: { ok: true } });
    } else if (path === '/_sim/requests' && method === 'GET') {
      send(res, { status: 200, body: requests });
    } else if (path === '/_sim/reset' && method === 'POST') {
      reset();
      send(res, { status: 200, body: { ok: true } });
    } else {
      send(res, jsonError(404, 'not_found', `No simulator control at ${method} ${path}.`));
    }
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://sim.invalid').pathname;
    const handled =
      path === options.apiPath
        ? handleApi(req, res, path)
        : path.startsWith('/_sim/')
          ? handleControl(req, res, path)
          : Promise.resolve(send(res, jsonError(404, 'not_found', `No route for ${path}.`)));
    handled.catch((error: unknown) => {
      // A simulator bug must surface as a 500, never as a hung request.
      const message = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) send(res, jsonError(500, 'simulator_error', message));
      else res.destroy();
    });
  });
  // Timers are cleared first so close() never waits for a pending delay fault.
  const { port, close } = await listenOnLoopback(server, options.port, () => {
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  });

  return { url: `http://127.0.0.1:${port}`, faults, requests, reset, close };
}
