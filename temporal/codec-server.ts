/**
 * `npm run codec-server`: Temporal's remote codec protocol (POST /encode and /decode with
 * `{"payloads": [...]}` in proto JSON), so the Temporal UI shows encrypted syncs decoded to the
 * operators who hold the keys. Point the UI at it (`temporal server start-dev --ui-codec-endpoint`,
 * or the UI's "Codec Server" setting). CORS allows the UI's origin (CATALOG_SYNC_CODEC_CORS_ORIGIN).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { listenOnLoopback } from './loopback.ts';
import { codecFromEnv } from './codec.ts';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export function codecServer(codec: PayloadCodec, opts: { corsOrigin: string; token?: string }): Server {
  return createServer((req, res: ServerResponse) => {
    res.setHeader('access-control-allow-origin', opts.corsOrigin);
    res.setHeader('access-control-allow-methods', 'POST, OPTIONS');
    res.setHeader('access-control-allow-headers', 'content-type, x-namespace, authorization');
    // Credentials only with a named origin: browsers refuse them with "*".
    if (opts.corsOrigin !== '*') res.setHeader('access-control-allow-credentials', 'true');
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const route = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode')) {
      return reply(404, { error: 'POST /encode or /decode' });
    }
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`)
      return reply(401, { error: 'unauthorized' });
    body(req)
      .then(async (text) => {
        const parsed = JSON.parse(text) as { payloads?: JsonPayload[] };
        const payloads = (parsed.payloads ?? []).map(fromJson);
        const out = route === '/encode' ? await codec.encode(payloads) : await codec.decode(payloads);
        reply(200, { payloads: out.map(toJson) });
      })
      .catch((err: unknown) => reply(400, { error: (err as Error).message }));
  });
}

export async function startCodecServer(
  codec: PayloadCodec,
  opts: { port?: number; corsOrigin?: string; token?: string } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const server = codecServer(codec, {
    corsOrigin: opts.corsOrigin ?? 'http://localhost:8233',
    ...(opts.token ? { token: opts.token } : {}),
  });
  const { port, close } = await listenOnLoopback(server, opts.port ?? 0);
  return { url: `http://127.0.0.1:${port}`, close };
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'));
if (isMain) {
  const codec = codecFromEnv();
  if (!codec) {
    process.stderr.write(
      'codec-server: set CATALOG_SYNC_CODEC_KEYS ("id:<base64 of 32 bytes>,...") to serve a codec\n',
    );
    process.exit(1);
  }
  const started = await startCodecServer(codec, {
    port: Number(process.env.CATALOG_SYNC_CODEC_PORT ?? 8888),
    ...(process.env.CATALOG_SYNC_CODEC_CORS_ORIGIN ? { corsOrigin: process.env.CATALOG_SYNC_CODEC_CORS_ORIGIN } : {}),
    ...(process.env.CATALOG_SYNC_CODEC_TOKEN ? { token: process.env.CATALOG_SYNC_CODEC_TOKEN } : {}),
  });
  process.stderr.write(`codec-server: listening on ${started.url} (POST /encode, /decode)\n`);
  process.once('SIGINT', () => void started.close().then(() => process.exit(0)));
  process.once('SIGTERM', () => void started.close().then(() => process.exit(0)));
}
