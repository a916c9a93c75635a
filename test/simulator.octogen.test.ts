/** The Octogen simulator, exercised over real HTTP as a provider client would. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultInjector, type Fault } from '../simulators/faults.ts';
import {
  DEMO_OCTOGEN_KEY,
  RESTRICTED_OCTOGEN_KEY,
  SHARED_DEMO_URL,
  RATE_LIMIT_MESSAGE,
  TRANSIENT_MESSAGE,
  demoOctogenIndex,
  makeOctogenProducts,
  startOctogenSimulator,
  type OctogenSimulator,
} from '../simulators/octogen.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const DOC_UUID = '11111111-1111-4111-8111-111111111111';
const NEW_DROP = { catalog: 'warrenlotas', url: 'https://warrenlotas.com/products/new-drop' };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- asserted field by field
}

interface CallOptions {
  key?: string | null;
  raw?: string;
  method?: 'POST' | 'GET' | 'DELETE';
  path?: string;
}

async function call(sim: OctogenSimulator, body: unknown, options: CallOptions = {}): Promise<Answer> {
  const key = options.key === undefined ? DEMO_OCTOGEN_KEY : options.key;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const method = options.method ?? 'POST';
  const res = await request(`${sim.url}${options.path ?? '/v1/products/refresh'}`, {
    method,
    headers,
    ...(method === 'GET' ? {} : { body: options.raw ?? JSON.stringify(body) }),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Non-JSON bodies (e.g. an injected proxy page) are returned as text.
  }
  return { status: res.statusCode, headers: res.headers, body: parsed };
}

const refresh = (sim: OctogenSimulator, targets: unknown[], key?: string | null): Promise<Answer> =>
  call(sim, { targets }, key === undefined ? {} : { key });

function product(catalog: string, n: number): { uuid: string; url: string } {
  const p = makeOctogenProducts(catalog, n)[n - 1];
  if (!p) throw new Error('no such product');
  return p;
}

let sim: OctogenSimulator;
beforeAll(async () => {
  sim = await startOctogenSimulator(demoOctogenIndex());
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => {
  sim.reset();
});

describe('sample data', () => {
  it('builds deterministic products with v4-format uuids and numbered urls', () => {
    const a = makeOctogenProducts('warrenlotas', 1500);
    const b = makeOctogenProducts('warrenlotas', 1500);
    expect(a).toEqual(b);
    expect(a).toHaveLength(1500);
    expect(new Set(a.map((p) => p.uuid)).size).toBe(1500);
    expect(a.every((p) => UUID_V4.test(p.uuid) && p.catalog === 'warrenlotas')).toBe(true);
    expect(a[0]?.url).toBe('https://warrenlotas.com/products/p-001');
    expect(a[1499]?.url).toBe('https://warrenlotas.com/products/p-1500');
    expect(makeOctogenProducts('x', 1, 'https://shop.example/items/')[0]?.url).toBe('https://shop.example/items/p-001');
  });

  it('demo index grants the two keys and holds a url in both catalogs', () => {
    const demo = demoOctogenIndex();
    expect(demo).toEqual(demoOctogenIndex());
    expect(demo.keys).toEqual({
      [DEMO_OCTOGEN_KEY]: ['warrenlotas', 'northwind'],
      [RESTRICTED_OCTOGEN_KEY]: ['northwind'],
    });
    const shared = demo.products.filter((p) => p.url === SHARED_DEMO_URL).map((p) => p.catalog);
    expect(shared.sort()).toEqual(['northwind', 'warrenlotas']);
    expect(demo.products.filter((p) => p.catalog === 'northwind').length).toBeGreaterThanOrEqual(50);
  });
});

describe('partial success', () => {
  it('answers the contract example: 202, accepted echoed as sent, ambiguous url rejected', async () => {
    const res = await refresh(sim, [{ uuid: DOC_UUID }, NEW_DROP, { url: SHARED_DEMO_URL }]);
    expect(res.status).toBe(202);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body).toEqual({
      requestId: expect.stringMatching(UUID_V4),
      submitted: 3,
      workflowId: expect.stringMatching(UUID_V4),
      workflowError: null,
      accepted: [{ uuid: DOC_UUID }, NEW_DROP],
      rejected: [
        {
          target: { url: SHARED_DEMO_URL },
          code: 'ambiguous_url',
          message: 'URL matched more than one granted catalog; include catalog.',
        },
      ],
    });
    expect(res.headers['x-request-id']).toBe(res.body.requestId);
  });

  it('answers 400 with the same shape when every target is rejected', async () => {
    const res = await refresh(sim, [{ uuid: '00000000-0000-4000-8000-000000000000' }, { url: 'not a url' }]);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ submitted: 2, workflowError: null, accepted: [] });
    expect(res.body.requestId).toMatch(UUID_V4);
    expect(res.body.rejected.map((r: { code: string }) => r.code)).toEqual(['product_not_found', 'invalid_url']);
    expect(res.body.rejected[1].target).toEqual({ url: 'not a url' });
  });

  it('resolves uuids against granted catalogs and the pinned catalog', async () => {
    const wl = product('warrenlotas', 7);
    const res = await refresh(sim, [
      { uuid: wl.uuid },
      { uuid: wl.uuid, catalog: 'warrenlotas' },
      { uuid: wl.uuid, catalog: 'northwind' },
      { uuid: wl.uuid.toUpperCase() },
    ]);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toEqual([
      { uuid: wl.uuid },
      { uuid: wl.uuid, catalog: 'warrenlotas' },
      { uuid: wl.uuid.toUpperCase() },
    ]);
    expect(res.body.rejected).toEqual([
      {
        target: { uuid: wl.uuid, catalog: 'northwind' },
        code: 'product_not_found',
        message: expect.stringContaining('northwind'),
      },
    ]);
  });

  it('resolves urls: unique match, pinned catalog, not found, invalid', async () => {
    const nw = product('northwind', 3);
    const targets = [
      { url: nw.url },
      { catalog: 'warrenlotas', url: SHARED_DEMO_URL },
      { catalog: 'warrenlotas', url: nw.url },
      { url: 'https://nowhere.example/p/1' },
      { url: '/products/p-001' },
      { url: 'ftp://warrenlotas.com/products/p-001' },
    ];
    const res = await refresh(sim, targets);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toEqual([targets[0], targets[1]]);
    expect(res.body.rejected).toEqual([
      { target: targets[2], code: 'product_not_found', message: expect.stringContaining('warrenlotas') },
      { target: targets[3], code: 'product_not_found', message: expect.any(String) },
      { target: targets[4], code: 'invalid_url', message: expect.any(String) },
      { target: targets[5], code: 'invalid_url', message: expect.any(String) },
    ]);
  });

  it('only sees the catalogs granted to the key', async () => {
    const wl = product('warrenlotas', 1);
    // For the restricted key the shared url exists in only one granted catalog: no ambiguity.
    const res = await refresh(
      sim,
      [{ url: SHARED_DEMO_URL }, { uuid: wl.uuid }, { url: wl.url }],
      RESTRICTED_OCTOGEN_KEY,
    );
    expect(res.status).toBe(202);
    expect(res.body.accepted).toEqual([{ url: SHARED_DEMO_URL }]);
    expect(res.body.rejected.map((r: { code: string }) => r.code)).toEqual(['product_not_found', 'product_not_found']);
  });

  it('can accept unindexed pinned urls when configured to', async () => {
    const lenient = await startOctogenSimulator({ ...demoOctogenIndex(), acceptUnindexedPinnedUrls: true });
    try {
      const target = { catalog: 'northwind', url: 'https://northwind.com/products/brand-new' };
      const res = await refresh(lenient, [target, { url: 'https://northwind.com/products/brand-new' }]);
      expect(res.status).toBe(202);
      expect(res.body.accepted).toEqual([target]);
      expect(res.body.rejected[0].code).toBe('product_not_found');
    } finally {
      await lenient.close();
    }
  });

  it('accepts a full batch of 500 from a 1,500-product index and refuses 501', async () => {
    const products = makeOctogenProducts('bigcat', 1500);
    const big = await startOctogenSimulator({ keys: { k: ['bigcat'] }, products });
    try {
      for (let start = 0; start < 1500; start += 500) {
        const batch = products.slice(start, start + 500).map((p) => ({ uuid: p.uuid }));
        const res = await refresh(big, batch, 'k');
        expect(res.status).toBe(202);
        expect(res.body.submitted).toBe(500);
        expect(res.body.accepted).toHaveLength(500);
        expect(res.body.rejected).toEqual([]);
      }
      const tooMany = await refresh(
        big,
        products.slice(0, 501).map((p) => ({ url: p.url })),
        'k',
      );
      expect(tooMany.status).toBe(422);
      expect(tooMany.body.error.code).toBe('invalid_request');
      expect(tooMany.body.error.message).toContain('500');
    } finally {
      await big.close();
    }
  });
});

describe('request errors', () => {
  it.each([
    ['no key', null],
    ['an unknown key', 'sk-not-a-key'],
    ['a prototype property name', 'constructor'],
  ])('answers 401 for %s', async (_label, key) => {
    const res = await refresh(sim, [{ uuid: DOC_UUID }], key);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    expect(sim.requests[0]?.keyValid).toBe(false);
  });

  it.each([
    ['malformed JSON', { raw: '{"targets": [' }, /JSON/],
    ['a body that is not an object', { raw: '[]' }, /object/],
    ['missing targets', { raw: '{}' }, /targets is required/],
    ['targets not an array', { raw: '{"targets": {"uuid": "x"}}' }, /array/],
    ['empty targets', { raw: '{"targets": []}' }, /at least one/],
    ['a non-object target', { raw: `{"targets": [{"uuid": "${DOC_UUID}"}, 42]}` }, /targets\[1\]: .*object/],
    [
      'both url and uuid',
      { raw: '{"targets": [{"uuid": "a", "url": "https://a.example/"}]}' },
      /targets\[0\]: .*exactly one of url or uuid/,
    ],
    ['neither url nor uuid', { raw: '{"targets": [{"catalog": "northwind"}]}' }, /exactly one of url or uuid/],
    ['a non-string uuid', { raw: '{"targets": [{"uuid": 7}]}' }, /targets\[0\]\.uuid/],
    ['an unknown target field', { raw: '{"targets": [{"uuid": "a", "id": "t1"}]}' }, /"id"/],
  ])('answers 422 for %s, naming the problem', async (_label, options, message) => {
    const res = await call(sim, undefined, options);
    expect(res.status).toBe(422);
    expect(res.body).toEqual({ error: { code: 'invalid_request', message: expect.stringMatching(message) } });
  });

  it('records an unparseable body as raw text', async () => {
    await call(sim, undefined, { raw: 'not json' });
    expect(sim.requests[0]).toMatchObject({ body: 'not json', status: 422, keyValid: true });
  });

  it('answers 403 catalog_not_granted listing every target that pins an ungranted catalog', async () => {
    const targets = [
      { uuid: product('northwind', 1).uuid },
      { catalog: 'warrenlotas', url: 'https://warrenlotas.com/products/p-001' },
      { catalog: 'secret', uuid: DOC_UUID },
    ];
    const res = await refresh(sim, targets, RESTRICTED_OCTOGEN_KEY);
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      error: { code: 'catalog_not_granted', message: expect.stringContaining('warrenlotas'), catalog: 'warrenlotas' },
      rejected: [
        { target: targets[1], code: 'catalog_not_granted', message: expect.stringContaining('warrenlotas') },
        { target: targets[2], code: 'catalog_not_granted', message: expect.stringContaining('secret') },
      ],
    });
  });

  it('answers 405 for other methods and 404 elsewhere', async () => {
    const get = await call(sim, undefined, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const other = await refresh({ ...sim, url: `${sim.url}/v2` }, [{ uuid: DOC_UUID }]);
    expect(other.status).toBe(404);
    expect(sim.requests.map((r) => r.method)).toEqual(['GET']);
  });
});

describe('recording', () => {
  it('records every API request in order without the API key', async () => {
    await refresh(sim, [{ uuid: DOC_UUID }]);
    await refresh(sim, [{ uuid: DOC_UUID }], 'sk-live-super-secret');
    expect(sim.requests).toEqual([
      expect.objectContaining({
        method: 'POST',
        path: '/v1/products/refresh',
        keyValid: true,
        status: 202,
        body: { targets: [{ uuid: DOC_UUID }] },
      }),
      expect.objectContaining({ keyValid: false, status: 401 }),
    ]);
    expect(sim.requests[0]?.at).toBeLessThanOrEqual(sim.requests[1]?.at ?? 0);
    expect(sim.requests[0]).not.toHaveProperty('fault');
    const exposed =
      JSON.stringify(sim.requests) + (await call(sim, undefined, { method: 'GET', path: '/_sim/requests' })).body;
    expect(exposed).not.toContain(DEMO_OCTOGEN_KEY);
    expect(exposed).not.toContain('super-secret');
  });

  it('reset() clears the live requests array and the faults', async () => {
    const live = sim.requests;
    sim.faults.script({ kind: 'status', status: 503 });
    sim.reset();
    const res = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(res.status).toBe(202);
    expect(live).toHaveLength(1);
    sim.reset();
    expect(live).toHaveLength(0);
  });
});

describe('faults', () => {
  it('answers 503 product_refresh_unavailable, then normally once the script runs out', async () => {
    sim.faults.script({ kind: 'status', status: 503 }, null, { kind: 'status', status: 503 });
    const statuses: number[] = [];
    let first: Answer | undefined;
    for (let i = 0; i < 4; i++) {
      const res = await refresh(sim, [{ uuid: DOC_UUID }]);
      first ??= res;
      statuses.push(res.status);
    }
    expect(statuses).toEqual([503, 202, 503, 202]);
    expect(first?.body).toEqual({
      error: { code: 'product_refresh_unavailable', message: 'Product refresh is temporarily unavailable.' },
    });
    expect(sim.requests.map((r) => r.fault)).toEqual(['status:503', undefined, 'status:503', undefined]);
    expect(sim.requests.map((r) => r.status)).toEqual([503, 202, 503, 202]);
  });

  it('answers 429 rate_limit_exceeded with Retry-After and rate-limit headers', async () => {
    sim.faults.script({ kind: 'status', status: 429, retryAfter: '7' });
    const res = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(res.status).toBe(429);
    expect(res.body.error.code).toBe('rate_limit_exceeded');
    expect(res.headers['retry-after']).toBe('7');
    expect(res.headers['x-ratelimit-limit']).toBeDefined();
    expect(res.headers['x-ratelimit-remaining']).toBe('0');
    expect(res.headers['x-ratelimit-reset']).toBe('7');
  });

  it.each([
    [500, 'internal_error'],
    [502, 'bad_gateway'],
    [504, 'gateway_timeout'],
  ])('answers an injected %i with a generic error body', async (status, code) => {
    sim.faults.script({ kind: 'status', status });
    const res = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
  });

  it('sends a custom status body as given, JSON or text', async () => {
    sim.faults.script(
      { kind: 'status', status: 502, body: '<html>Bad Gateway</html>' },
      { kind: 'status', status: 202, body: { unexpected: true } },
    );
    const html = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(html.status).toBe(502);
    expect(html.body).toBe('<html>Bad Gateway</html>');
    expect(html.headers['content-type']).toContain('text/plain');
    const odd = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(odd).toMatchObject({ status: 202, body: { unexpected: true } });
  });

  it('overrides auth and validation: a status fault answers before the request is examined', async () => {
    sim.faults.script({ kind: 'status', status: 503 });
    const res = await call(sim, undefined, { key: null, raw: 'garbage' });
    expect(res.status).toBe(503);
    expect(sim.requests[0]).toMatchObject({ keyValid: false, body: 'garbage', fault: 'status:503' });
  });

  it('delays the answer', async () => {
    sim.faults.script({ kind: 'delay', ms: 150 });
    const started = performance.now();
    const res = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.status).toBe(202);
    expect(sim.requests[0]?.fault).toBe('delay:150');
  });

  it('resets the connection before any response bytes', async () => {
    sim.faults.script({ kind: 'reset' });
    await expect(refresh(sim, [{ uuid: DOC_UUID }])).rejects.toThrow();
    // The request landed: it is recorded with the body, but nothing was answered.
    expect(sim.requests[0]).toMatchObject({ fault: 'reset', status: 0, body: { targets: [{ uuid: DOC_UUID }] } });
    expect((await refresh(sim, [{ uuid: DOC_UUID }])).status).toBe(202);
  });

  it('truncates the body and drops the connection', async () => {
    sim.faults.script({ kind: 'truncate' });
    const res = await request(`${sim.url}/v1/products/refresh`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEMO_OCTOGEN_KEY}` },
      body: JSON.stringify({ targets: [{ uuid: DOC_UUID }] }),
    });
    expect(res.statusCode).toBe(202);
    await expect(res.body.text()).rejects.toThrow();
    expect(sim.requests[0]).toMatchObject({ fault: 'truncate', status: 202 });
  });

  it('rejects the first `count` would-be-accepted targets as transient', async () => {
    sim.faults.script({ kind: 'reject-transient', code: 'temporarily_unavailable', count: 2 });
    const a = product('warrenlotas', 1);
    const b = product('warrenlotas', 2);
    const c = product('warrenlotas', 3);
    const res = await refresh(sim, [
      { uuid: a.uuid },
      { url: 'https://nowhere.example/x' },
      { uuid: b.uuid },
      { uuid: c.uuid },
    ]);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toEqual([{ uuid: c.uuid }]);
    expect(res.body.rejected).toEqual([
      { target: { uuid: a.uuid }, code: 'temporarily_unavailable', message: TRANSIENT_MESSAGE },
      { target: { url: 'https://nowhere.example/x' }, code: 'product_not_found', message: expect.any(String) },
      { target: { uuid: b.uuid }, code: 'temporarily_unavailable', message: TRANSIENT_MESSAGE },
    ]);
  });

  it('rejects every target as transient by default, answering 400', async () => {
    sim.faults.script({ kind: 'reject-transient', code: 'temporarily_unavailable' });
    const res = await refresh(sim, [{ uuid: DOC_UUID }, NEW_DROP]);
    expect(res.status).toBe(400);
    expect(res.body.accepted).toEqual([]);
    expect(res.body.rejected.map((r: { code: string }) => r.code)).toEqual([
      'temporarily_unavailable',
      'temporarily_unavailable',
    ]);
  });

  it('consumes faults only on the API path', async () => {
    sim.faults.script({ kind: 'status', status: 503 });
    expect((await call(sim, undefined, { method: 'GET', path: '/_sim/requests' })).status).toBe(200);
    expect((await call(sim, {}, { path: '/elsewhere' })).status).toBe(404);
    expect((await refresh(sim, [{ uuid: DOC_UUID }])).status).toBe(503);
  });

  it('draws random faults from a seeded, reproducible sequence', () => {
    const faults: Fault[] = [{ kind: 'status', status: 503 }, { kind: 'reset' }];
    const draw = (seed: number): (string | null)[] => {
      const injector = new FaultInjector();
      injector.rate(0.3, faults, seed);
      return Array.from({ length: 200 }, () => injector.next()?.kind ?? null);
    };
    const run = draw(42);
    expect(draw(42)).toEqual(run);
    expect(draw(43)).not.toEqual(run);
    const hits = run.filter((k) => k !== null).length;
    expect(hits).toBeGreaterThan(30);
    expect(hits).toBeLessThan(90);
    expect(new Set(run)).toEqual(new Set([null, 'status', 'reset']));

    const injector = new FaultInjector();
    injector.rate(1, { kind: 'truncate' });
    injector.script(null, { kind: 'reset' });
    // The script goes first, then the rate.
    expect([injector.next(), injector.next(), injector.next()]).toEqual([
      null,
      { kind: 'reset' },
      { kind: 'truncate' },
    ]);
    injector.rate(0, { kind: 'truncate' });
    expect(injector.next()).toBeNull();
    expect(() => injector.rate(1.5, { kind: 'reset' })).toThrow(RangeError);
  });

  it('adds the configured latency to every answer', async () => {
    const slow = await startOctogenSimulator({ ...demoOctogenIndex(), latencyMs: 120 });
    try {
      const started = performance.now();
      expect((await refresh(slow, [{ uuid: DOC_UUID }])).status).toBe(202);
      expect(performance.now() - started).toBeGreaterThanOrEqual(110);
    } finally {
      await slow.close();
    }
  });
});

describe('request budget', () => {
  let limited: OctogenSimulator | undefined;
  /** A simulator with a budget, closed after the test. */
  async function startLimited(requestsPerMinute: number, now?: () => number): Promise<OctogenSimulator> {
    limited = await startOctogenSimulator({ ...demoOctogenIndex(), requestsPerMinute, ...(now ? { now } : {}) });
    return limited;
  }
  afterEach(async () => {
    await limited?.close();
    limited = undefined;
  });
  const rateHeaders = (res: Answer): (string | string[] | undefined)[] => [
    res.headers['x-ratelimit-limit'],
    res.headers['x-ratelimit-remaining'],
    res.headers['x-ratelimit-reset'],
  ];

  it('is off by default: no 429 and no rate-limit headers', async () => {
    for (let i = 0; i < 70; i++) {
      const res = await refresh(sim, [{ uuid: DOC_UUID }]);
      expect(res.status).toBe(202);
      expect(rateHeaders(res)).toEqual([undefined, undefined, undefined]);
    }
    expect(sim.rateLimited).toBe(0);
  });

  it('counts down X-RateLimit-Remaining, then answers 429 with Retry-After, counting it in rateLimited', async () => {
    const now = 5_000_000;
    const budgeted = await startLimited(3, () => now);
    const remaining: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await refresh(budgeted, [{ uuid: DOC_UUID }]);
      expect(res.status).toBe(202);
      expect(res.headers['x-request-id']).toBe(res.body.requestId); // the answer's own headers stay
      expect(res.headers['retry-after']).toBeUndefined();
      remaining.push(rateHeaders(res));
    }
    expect(remaining).toEqual([
      ['3', '2', '60'],
      ['3', '1', '60'],
      ['3', '0', '60'],
    ]);
    expect(budgeted.rateLimited).toBe(0);

    const res = await refresh(budgeted, [{ uuid: DOC_UUID }]);
    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body).toEqual({ error: { code: 'rate_limit_exceeded', message: RATE_LIMIT_MESSAGE } });
    expect(res.headers['retry-after']).toBe('60');
    expect(rateHeaders(res)).toEqual(['3', '0', '60']);
    expect(budgeted.rateLimited).toBe(1);
    expect(budgeted.requests.map((r) => r.status)).toEqual([202, 202, 202, 429]);
  });

  it('slides a 60 s window over the admitted requests, whatever their answer', async () => {
    let now = 1_000_000;
    const budgeted = await startLimited(2, () => now);
    expect(rateHeaders(await refresh(budgeted, [{ uuid: DOC_UUID }]))).toEqual(['2', '1', '60']); // t = 0
    now += 20_000;
    // The budget is spent before the key is checked, and the 401 carries the headers too.
    const unauthorized = await refresh(budgeted, [{ uuid: DOC_UUID }], 'wrong-key'); // t = 20 s
    expect(unauthorized.status).toBe(401);
    expect(rateHeaders(unauthorized)).toEqual(['2', '0', '40']);
    now += 500;
    const first = await refresh(budgeted, [{ uuid: DOC_UUID }]);
    expect(first.status).toBe(429);
    expect(first.headers['retry-after']).toBe('40'); // the t = 0 slot frees at 60 s: 39.5 s, rounded up
    expect(first.headers['x-ratelimit-reset']).toBe('40');
    now += 39_499;
    const last = await refresh(budgeted, [{ uuid: DOC_UUID }]);
    expect(last.status).toBe(429);
    expect(last.headers['retry-after']).toBe('1'); // 1 ms left: at least 1 s
    now += 1;
    const freed = await refresh(budgeted, [{ uuid: DOC_UUID }]); // t = 60 s
    expect(freed.status).toBe(202);
    expect(rateHeaders(freed)).toEqual(['2', '0', '20']); // the t = 20 s request leaves next
    // 429s were not admitted, so they did not push the window out.
    now += 20_000;
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(202); // t = 80 s
    expect(budgeted.rateLimited).toBe(2);
  });

  it('answers an injected status fault before the budget, without spending it', async () => {
    const budgeted = await startLimited(1);
    budgeted.faults.script({ kind: 'status', status: 503 }, { kind: 'status', status: 429, retryAfter: '9' });
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(503);
    const injected = await refresh(budgeted, [{ uuid: DOC_UUID }]);
    expect(injected.status).toBe(429);
    expect(injected.headers['retry-after']).toBe('9');
    expect(budgeted.rateLimited).toBe(0);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(202);
    budgeted.faults.script({ kind: 'status', status: 500 });
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(500);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(429);
    expect(budgeted.rateLimited).toBe(1);
  });

  it('starts over after reset() or POST /_sim/reset', async () => {
    const budgeted = await startLimited(1);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(202);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(429);
    budgeted.reset();
    expect(budgeted.rateLimited).toBe(0);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(202);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(429);
    expect(budgeted.rateLimited).toBe(1);
    expect((await call(budgeted, undefined, { path: '/_sim/reset', raw: '' })).status).toBe(200);
    expect(budgeted.rateLimited).toBe(0);
    expect((await refresh(budgeted, [{ uuid: DOC_UUID }])).status).toBe(202);
  });

  it('refuses a budget that is not a positive integer or Infinity', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      await expect(startOctogenSimulator({ requestsPerMinute: bad })).rejects.toThrow(RangeError);
    }
  });
});

describe('HTTP control for a developer', () => {
  const control = (method: 'POST' | 'DELETE' | 'GET', path: string, body?: unknown): Promise<Answer> =>
    call(sim, body, { method, path, key: null });

  it('scripts faults, lists requests, clears and resets', async () => {
    const set = await control('POST', '/_sim/faults', {
      script: [{ kind: 'status', status: 429, retryAfter: 3 }, null, { kind: 'status', status: 504 }],
    });
    expect(set).toMatchObject({ status: 200, body: { ok: true, pending: 3 } });
    const first = await refresh(sim, [{ uuid: DOC_UUID }]);
    expect(first.status).toBe(429);
    expect(first.headers['retry-after']).toBe('3');
    expect((await refresh(sim, [{ uuid: DOC_UUID }])).status).toBe(202);

    const listed = await control('GET', '/_sim/requests');
    expect(listed.status).toBe(200);
    expect(listed.body.map((r: { status: number }) => r.status)).toEqual([429, 202]);

    expect((await control('DELETE', '/_sim/faults')).status).toBe(200);
    expect((await refresh(sim, [{ uuid: DOC_UUID }])).status).toBe(202);

    expect((await control('POST', '/_sim/reset')).status).toBe(200);
    expect(sim.requests).toHaveLength(0);
  });

  it('sets a seeded random rate', async () => {
    const set = await control('POST', '/_sim/faults', { rate: 1, faults: [{ kind: 'status', status: 502 }], seed: 7 });
    expect(set.status).toBe(200);
    expect((await refresh(sim, [{ uuid: DOC_UUID }])).status).toBe(502);
    expect((await refresh(sim, [{ uuid: DOC_UUID }])).status).toBe(502);
  });

  it('answers 422 naming the problem for an invalid fault', async () => {
    const res = await control('POST', '/_sim/faults', { script: [{ kind: 'explode' }] });
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/script\[0\]\.kind/);
    const badRate = await control('POST', '/_sim/faults', { rate: 2, faults: [{ kind: 'reset' }] });
    expect(badRate.status).toBe(422);
    expect(badRate.body.error.message).toMatch(/rate/);
  });
});

describe('lifecycle', () => {
  let extra: OctogenSimulator | undefined;
  afterEach(async () => {
    await extra?.close();
    extra = undefined;
  });

  it('closes promptly with a keep-alive connection and a request stuck in a delay', async () => {
    extra = await startOctogenSimulator();
    expect((await refresh(extra, [{ uuid: DOC_UUID }])).status).toBe(202); // default index is the demo one
    extra.faults.script({ kind: 'delay', ms: 60_000 });
    const stuck = refresh(extra, [{ uuid: DOC_UUID }]);
    stuck.catch(() => undefined);
    await expect.poll(() => extra?.requests.length).toBe(2);
    const started = performance.now();
    await extra.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(stuck).rejects.toThrow();
  });

  it('main.ts prints its URL and the demo key, serves the demo index and stops on SIGTERM', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', 'simulators/main.ts'], {
      cwd: root,
      env: { ...process.env, OCTOGEN_SIM_PORT: '0', INSIDER_SIM_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0] ?? '');
        });
        child.once('exit', (code) => reject(new Error(`main.ts exited early with ${code}`)));
      });
      expect(line).toContain(DEMO_OCTOGEN_KEY);
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0];
      expect(url).toBeDefined();
      const res = await refresh({ ...sim, url: url ?? '' }, [{ url: SHARED_DEMO_URL }]);
      expect(res.status).toBe(400);
      expect(res.body.rejected[0].code).toBe('ambiguous_url');
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 20_000);
});
