/**
 * Hostile bodies at the HTTP front (fast-check): every answer is a clear 2xx or 4xx with an error
 * code, never a 5xx, a crash or a hang, and a request with any malformed part starts nothing.
 */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildHttpFront } from '../http/http-front.ts';
import { connectTestEnv, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';

const TOKEN = 'property-token';
let t: TemporalTestEnv;
let app: FastifyInstance;

beforeAll(async () => {
  t = await connectTestEnv();
  // No worker polls this queue: a request that gets through only starts a sync that waits.
  app = await buildHttpFront({
    client: t.client,
    taskQueue: uniqueTaskQueue('property'),
    tokens: [TOKEN],
    bodyLimit: 1 << 20,
  });
});
afterAll(async () => {
  await app?.close();
  await t?.close();
});

const hostile: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string(),
    fc.constant('\uD800'),
    fc.double(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(
      fc.constantFrom('__proto__', 'constructor', 'provider', 'targets', 'key', 'options', 'x'),
      tie('value'),
      {
        maxKeys: 4,
      },
    ),
  ),
})).value;

const body = fc.oneof(
  hostile,
  fc.record({
    provider: fc.constantFrom('octogen', 'insider', 'nope', ''),
    targets: fc.array(hostile, { maxLength: 5 }),
  }),
  fc.record({
    provider: fc.constant('octogen'),
    targets: fc.array(hostile, { maxLength: 3 }),
    options: hostile,
    key: fc.oneof(fc.string({ maxLength: 300 }), hostile),
  }),
);

it('answers any body with a clear 2xx or 4xx, never a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(body, async (value) => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/syncs',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        payload: JSON.stringify(value) ?? 'null',
      });
      expect(res.statusCode).toBeLessThan(500);
      const answer = res.json() as { error?: { code: string; message: string }; workflowId?: string | null };
      if (res.statusCode >= 400 && answer.error) expect(answer.error.message.length).toBeGreaterThan(0);
      if (res.statusCode === 400) expect(answer.workflowId ?? null).toBeNull();
    }),
    { numRuns: 150 },
  );
});

it('refuses bodies that are not JSON, or too large, with their own codes', async () => {
  const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
  const broken = await app.inject({ method: 'POST', url: '/v1/syncs', headers, payload: '{"provider": ' });
  expect(broken.statusCode).toBe(400);
  const huge = await app.inject({ method: 'POST', url: '/v1/syncs', headers, payload: `"${'x'.repeat(2 << 20)}"` });
  expect(huge.statusCode).toBe(413);
  const deep = await app.inject({
    method: 'POST',
    url: '/v1/syncs',
    headers,
    payload: `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
  });
  expect(deep.statusCode).toBe(400);
  expect(deep.json()).toMatchObject({ error: { code: 'invalid_request', message: expect.stringMatching(/nested/) } });
  const plain = await app.inject({
    method: 'POST',
    url: '/v1/syncs',
    headers: { ...headers, 'content-type': 'text/plain' },
    payload: '{"provider": "octogen"}',
  });
  expect(plain.statusCode).toBe(415);
  expect(plain.json()).toMatchObject({ error: { message: expect.stringMatching(/application\/json/) } });
});
