/**
 * The payload codec: with keys configured, product data is not readable in the Temporal store;
 * the codec server decodes it for operators who hold the key; keys rotate by ID.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import { inject } from 'vitest';
import proto from '@temporalio/proto';
import { request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitReport, startSync } from '../client/index.ts';
import { codecFromEnv, CodecConfigError } from '../temporal/codec.ts';
import { startCodecServer } from '../temporal/codec-server.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { createSyncWorker } from '../worker/worker.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'codec-test-key';
const k1 = `k1:${randomBytes(32).toString('base64')}`;
const k2 = `k2:${randomBytes(32).toString('base64')}`;
const products = makeOctogenProducts('alpha', 2);
let t: TemporalTestEnv;
let sim: OctogenSimulator;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});

it('keeps targets encrypted in history, and the codec server shows them decoded', async () => {
  const codec = codecFromEnv({ CATALOG_SYNC_CODEC_KEYS: k1 });
  if (!codec) throw new Error('codec not configured');
  const dataConverter = { payloadCodecs: [codec] };
  const client = new Client({ connection: t.client.connection, namespace: t.namespace, dataConverter });
  const taskQueue = uniqueTaskQueue('codec');
  const worker = await createSyncWorker({
    connection: t.nativeConnection,
    namespace: t.namespace,
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
    dataConverter,
    activityDeps: { env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY } },
  });
  const secretUrl = products[1]!.url;
  const { report, history } = await worker.runUntil(
    (async () => {
      const { workflowId } = await startSync(
        client,
        { provider: 'octogen', targets: [{ uuid: products[0]!.uuid }, { catalog: 'alpha', url: secretUrl }] },
        taskQueue,
      );
      const outcome = await awaitReport(client, workflowId);
      return { report: outcome.report, history: await client.workflow.getHandle(workflowId).fetchHistory() };
    })(),
  );
  expect(report.counts).toMatchObject({ submitted: 2, accepted: 2 });
  expect(sim.requests).toHaveLength(2); // one batch a pinned catalog

  // The store holds ciphertext: neither the uuid nor the url appears in any stored byte.
  const stored = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()).toString('latin1');
  expect(stored).not.toContain(products[0]!.uuid);
  expect(stored).not.toContain(secretUrl);
  const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  expect(Buffer.from(input?.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');

  // The codec server decodes what the UI sends it.
  const server = await startCodecServer(codec, { corsOrigin: 'http://localhost:8233' });
  try {
    const res = await request(`${server.url}/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://localhost:8233' },
      body: JSON.stringify({
        payloads: [
          {
            metadata: Object.fromEntries(
              Object.entries(input?.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
            ),
            data: Buffer.from(input?.data ?? []).toString('base64'),
          },
        ],
      }),
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:8233');
    const decoded = (await res.body.json()) as { payloads: { data: string }[] };
    expect(Buffer.from(decoded.payloads[0]!.data, 'base64').toString()).toContain(secretUrl);
  } finally {
    await server.close();
  }
});

it('rotates keys by ID: new payloads use the first key, old ones still decrypt', async () => {
  const old = codecFromEnv({ CATALOG_SYNC_CODEC_KEYS: k1 });
  const rotated = codecFromEnv({ CATALOG_SYNC_CODEC_KEYS: `${k2},${k1}` });
  const payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"price":40.9}') };
  const [sealedOld] = await old!.encode([payload]);
  const [sealedNew] = await rotated!.encode([payload]);
  expect(Buffer.from(sealedNew!.metadata!['encryption-key-id']!).toString()).toBe('k2');
  const [a] = await rotated!.decode([sealedOld!]);
  expect(Buffer.from(a!.data!).toString()).toBe('{"price":40.9}');
  await expect(old!.decode([sealedNew!])).rejects.toThrow(/key "k2".*CATALOG_SYNC_CODEC_KEYS/);
  expect(() => codecFromEnv({ CATALOG_SYNC_CODEC_KEYS: 'k1:short' })).toThrow(CodecConfigError);
});
