/** The Insider Catalog API simulator, exercised over real HTTP as a provider client would. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DEMO_INSIDER_PARTNER,
  DEMO_INSIDER_TOKEN,
  INSIDER_MESSAGES,
  INSIDER_UPDATE_PATH,
  demoInsiderCatalog,
  makeInsiderItems,
  startInsiderSimulator,
  unknownAttributeWarning,
  type InsiderSimConfig,
  type InsiderSimulator,
} from '../simulators/insider.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- asserted field by field
}

interface CallOptions {
  partner?: string | null;
  token?: string | null;
  raw?: string;
  method?: 'POST' | 'GET' | 'DELETE';
  path?: string;
}

async function call(sim: { url: string }, body: unknown, options: CallOptions = {}): Promise<Answer> {
  const partner = options.partner === undefined ? DEMO_INSIDER_PARTNER : options.partner;
  const token = options.token === undefined ? DEMO_INSIDER_TOKEN : options.token;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (partner !== null) headers['X-PARTNER-NAME'] = partner;
  if (token !== null) headers['X-REQUEST-TOKEN'] = token;
  const method = options.method ?? 'POST';
  const res = await request(`${sim.url}${options.path ?? INSIDER_UPDATE_PATH}`, {
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

const update = (sim: { url: string }, records: unknown[], options: CallOptions = {}): Promise<Answer> =>
  call(sim, records, options);

/** The contract's first sample request. */
const SAMPLE = {
  item_id: '2159967',
  locale: 'en_US',
  in_stock: 1,
  price: { USD: 40.9 },
  original_price: { USD: 49.9 },
};
const sku = (n: number, fields: Record<string, unknown> = { in_stock: 1 }): Record<string, unknown> => ({
  item_id: `sku-${String(n).padStart(5, '0')}`,
  locale: 'en_US',
  ...fields,
});

function success(
  valid: number,
  invalid: { message: string; count: number; document_ids: string[] }[] = [],
  warnings: { message: string; count: number; document_ids: string[] }[] = [],
): unknown {
  const invalidCount = invalid.reduce((sum, d) => sum + d.count, 0);
  const total = valid + invalidCount;
  return {
    success: true,
    message: {
      invalidRatio: total === 0 ? 0 : invalidCount / total,
      valid: { count: valid },
      invalid: { count: invalidCount, details: invalid },
      warnings: { count: warnings.reduce((sum, d) => sum + d.count, 0), details: warnings },
    },
  };
}

let sim: InsiderSimulator;
let extra: InsiderSimulator | undefined;
/** A simulator with its own settings, closed after the test. */
async function startExtra(config: Partial<InsiderSimConfig>): Promise<InsiderSimulator> {
  extra = await startInsiderSimulator(config);
  return extra;
}

beforeAll(async () => {
  sim = await startInsiderSimulator(demoInsiderCatalog());
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => {
  sim.reset();
});
afterEach(async () => {
  await extra?.close();
  extra = undefined;
});

describe('sample data', () => {
  it('builds deterministic item keys', () => {
    expect(makeInsiderItems(3)).toEqual(['sku-00001:en_US', 'sku-00002:en_US', 'sku-00003:en_US']);
    expect(makeInsiderItems(2, 'tr_TR:store1', 'p')).toEqual(['p-00001:tr_TR:store1', 'p-00002:tr_TR:store1']);
    const many = makeInsiderItems(20_000);
    expect(new Set(many).size).toBe(20_000);
    expect(many[19_999]).toBe('sku-20000:en_US');
    expect(makeInsiderItems(0)).toEqual([]);
  });

  it('demo catalog: demo partner and token, a few dozen items with the contract samples, two attributes', () => {
    const demo = demoInsiderCatalog();
    expect(demo).toEqual(demoInsiderCatalog());
    expect(demo.partnerName).toBe('demo-partner');
    expect(demo.token).toBe('demo-insider-token');
    expect(demo.productAttributes).toEqual(['material', 'season']);
    expect(demo.items.length).toBeGreaterThanOrEqual(24);
    expect(demo.items.length).toBeLessThan(100);
    expect(demo.items).toEqual(expect.arrayContaining(['sku-00001:en_US', '2159967:en_US', 'Item-123:en_US']));
  });

  it('rejects impossible limits', async () => {
    await expect(startInsiderSimulator({ maxRecords: 0 })).rejects.toThrow(RangeError);
    await expect(startInsiderSimulator({ requestsPerMinute: 1.5 })).rejects.toThrow(/requestsPerMinute/);
  });
});

describe('the contract samples', () => {
  it('answers the first sample request word for word', async () => {
    const res = await update(sim, [SAMPLE]);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(res.body).toEqual({
      success: true,
      message: {
        invalidRatio: 0,
        valid: { count: 1 },
        invalid: { count: 0, details: [] },
        warnings: { count: 0, details: [] },
      },
    });
  });

  it('answers the stock_code sample with the warning, the product still valid', async () => {
    const res = await update(sim, [
      {
        item_id: 'Item-123',
        locale: 'en_US',
        in_stock: 1,
        price: { USD: 35.5 },
        original_price: { USD: 35.5 },
        product_attributes: { stock_code: '01020304' },
      },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      message: {
        invalidRatio: 0,
        valid: { count: 1 },
        invalid: { count: 0, details: [] },
        warnings: {
          count: 1,
          details: [
            {
              message:
                'Product attribute keys are not included in partners attribute.(stock_code)is not included in partner attribute map.',
              count: 1,
              document_ids: ['Item-123:en_US'],
            },
          ],
        },
      },
    });
  });
});

describe('request errors', () => {
  it.each([
    ['no X-PARTNER-NAME', { partner: null }, INSIDER_MESSAGES.unknownPartner],
    ['an unknown partner', { partner: 'other-partner' }, INSIDER_MESSAGES.unknownPartner],
    ['the partner name not lowercase', { partner: 'Demo-Partner' }, INSIDER_MESSAGES.unknownPartner],
    ['an unknown partner and no token', { partner: 'other-partner', token: null }, INSIDER_MESSAGES.unknownPartner],
    ['no X-REQUEST-TOKEN', { token: null }, INSIDER_MESSAGES.badToken],
    ['a wrong token', { token: 'not-the-token' }, INSIDER_MESSAGES.badToken],
  ])('answers 401 for %s', async (_label, options, message) => {
    const res = await update(sim, [SAMPLE], options);
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ status: false, message });
    expect(sim.requests[0]).toMatchObject({ keyValid: false, status: 401 });
  });

  it('uses the contract wording for both 401s', () => {
    expect(INSIDER_MESSAGES.unknownPartner).toBe(
      'Partner does not have necessary integration settings for Catalog API.',
    );
    expect(INSIDER_MESSAGES.badToken).toBe('Partner token authentication failed.');
  });

  it.each([
    ['malformed JSON', '[{"item_id": '],
    ['an object instead of an array', JSON.stringify(SAMPLE)],
    ['a JSON string', '"hello"'],
    ['JSON null', 'null'],
    ['an empty body', ''],
  ])('answers 400 invalid JSON for %s', async (_label, raw) => {
    const res = await call(sim, undefined, { raw });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ status: false, message: 'Request data is not in valid JSON format.' });
  });

  it('checks the headers before the body', async () => {
    const res = await call(sim, undefined, { raw: 'garbage', token: 'wrong' });
    expect(res.status).toBe(401);
    expect(res.body.message).toBe(INSIDER_MESSAGES.badToken);
  });

  it('answers 400 above maxRequestBytes, summarizing the recorded body', async () => {
    const small = await startExtra({ maxRequestBytes: 2000 });
    const records = Array.from({ length: 40 }, (_, i) => sku(i + 1, { name: 'x'.repeat(40) }));
    const raw = JSON.stringify(records);
    expect(Buffer.byteLength(raw)).toBeGreaterThan(2000);
    const res = await update(small, records);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ status: false, message: 'Maximum allowed request size is exceeded.' });
    expect(small.requests[0]).toMatchObject({
      status: 400,
      keyValid: true,
      body: `[${Buffer.byteLength(raw)} bytes, over the 2000 byte limit]`,
    });
    // Exactly at the limit is fine.
    const fits = JSON.stringify([sku(1, { name: '' })]);
    const atLimit = [sku(1, { name: 'y'.repeat(2000 - Buffer.byteLength(fits)) })];
    expect(Buffer.byteLength(JSON.stringify(atLimit))).toBe(2000);
    expect((await update(small, atLimit)).status).toBe(200);
    // The headers are still checked first.
    expect((await update(small, records, { token: 'wrong' })).status).toBe(401);
  });

  it('answers 400 with the same message above maxRecords, and accepts exactly maxRecords', async () => {
    const capped = await startExtra({ maxRecords: 5, items: makeInsiderItems(10) });
    const records = Array.from({ length: 6 }, (_, i) => sku(i + 1));
    const over = await update(capped, records);
    expect(over.status).toBe(400);
    expect(over.body).toEqual({ status: false, message: 'Maximum allowed request size is exceeded.' });
    const full = await update(capped, records.slice(0, 5));
    expect(full).toMatchObject({ status: 200, body: success(5) });
  });

  it('accepts a batch of the default 1000 records and refuses 1001', async () => {
    const big = await startExtra({ items: makeInsiderItems(1001) });
    const records = Array.from({ length: 1001 }, (_, i) => sku(i + 1, { in_stock: i % 2, price: { USD: i + 0.5 } }));
    const res = await update(big, records.slice(0, 1000));
    expect(res).toMatchObject({ status: 200, body: success(1000) });
    expect((await update(big, records)).status).toBe(400);
  });

  it('answers 405 for other methods and 404 elsewhere', async () => {
    const get = await call(sim, undefined, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    const other = await update(sim, [SAMPLE], { path: '/v1/update' });
    expect(other.status).toBe(404);
    expect(sim.requests.map((r) => r.method)).toEqual(['GET']);
  });
});

describe('record validation', () => {
  it('answers an empty array with nothing valid or invalid', async () => {
    const res = await update(sim, []);
    expect(res).toMatchObject({ status: 200, body: success(0) });
  });

  it.each([
    ['a record that is not an object', 42, '0', INSIDER_MESSAGES.notAnObject],
    ['a null record', null, '0', INSIDER_MESSAGES.notAnObject],
    ['a missing item_id', { locale: 'en_US', in_stock: 1 }, '0', INSIDER_MESSAGES.missingItemId],
    ['a numeric item_id', { item_id: 2159967, locale: 'en_US', in_stock: 1 }, '0', INSIDER_MESSAGES.missingItemId],
    ['an empty item_id', { item_id: '', locale: 'en_US', in_stock: 1 }, '0', INSIDER_MESSAGES.missingItemId],
    ['a missing locale', { item_id: 'sku-00001', in_stock: 1 }, '0', INSIDER_MESSAGES.missingLocale],
    ['a locale not a string', { item_id: 'sku-00001', locale: ['en_US'], in_stock: 1 }, '0', /locale is required/],
    [
      'an item_id over 128 characters',
      { item_id: 'i'.repeat(129), locale: 'en_US', in_stock: 1 },
      `${'i'.repeat(129)}:en_US`,
      INSIDER_MESSAGES.itemIdTooLong,
    ],
    ['a locale without country', { item_id: 'sku-00001', locale: 'en', in_stock: 1 }, 'sku-00001:en', /lang_COUNTRY/],
    ['a locale with a dash', sku(1, { locale: 'en-US', in_stock: 1 }), 'sku-00001:en-US', /lang_COUNTRY/],
    ['a locale in the wrong case', sku(1, { locale: 'EN_us', in_stock: 1 }), 'sku-00001:EN_us', /lang_COUNTRY/],
    ['no update field', { item_id: 'sku-00001', locale: 'en_US' }, 'sku-00001:en_US', INSIDER_MESSAGES.noUpdateField],
    ['only undefined attributes', sku(1, { stock: 3 }), 'sku-00001:en_US', INSIDER_MESSAGES.noUpdateField],
    ['a numeric name', sku(1, { name: 5 }), 'sku-00001:en_US', 'name must be a string.'],
    ['a null brand', sku(1, { brand: null }), 'sku-00001:en_US', 'brand must be a string.'],
    ['a url over 512 characters', sku(1, { url: 'u'.repeat(513) }), 'sku-00001:en_US', /url must be at most 512/],
    ['a long description', sku(1, { description: 'd'.repeat(1025) }), 'sku-00001:en_US', /at most 1024/],
    ['a category string', sku(1, { category: 'Shoes' }), 'sku-00001:en_US', 'category must be an array of strings.'],
    ['numeric variants', sku(1, { variants: [1, 2] }), 'sku-00001:en_US', 'variants must be an array of strings.'],
    ['a numeric price', sku(1, { price: 40.9 }), 'sku-00001:en_US', /price must be an object of currency/],
    ['a string price value', sku(1, { original_price: { USD: '40.9' } }), 'sku-00001:en_US', /^original_price/],
    ['a boolean in_stock', sku(1, { in_stock: true }), 'sku-00001:en_US', 'in_stock must be an integer.'],
    ['a fractional in_stock', sku(1, { in_stock: 0.5 }), 'sku-00001:en_US', 'in_stock must be an integer.'],
    ['an array of attributes', sku(1, { product_attributes: [] }), 'sku-00001:en_US', /product_attributes must be/],
    [
      'an item not in the catalog',
      sku(999),
      'sku-00999:en_US',
      'Product does not exist in catalog; it was not updated.',
    ],
    ['an item in another locale', sku(20, { locale: 'tr_TR', in_stock: 1 }), 'sku-00020:tr_TR', /does not exist/],
  ])('rejects %s', async (_label, record, documentId, message) => {
    const res = await update(sim, [record]);
    expect(res.status).toBe(200);
    const expected = typeof message === 'string' ? message : expect.stringMatching(message);
    expect(res.body).toEqual(success(0, [{ message: expected, count: 1, document_ids: [documentId] }]));
    expect(res.body.message.invalidRatio).toBe(1);
  });

  it('accepts every field with its type, a store locale and the maximum lengths', async () => {
    const record = {
      item_id: 'sku-00002',
      locale: 'en_US',
      name: 'n'.repeat(512),
      url: 'https://shop.example/p/2',
      image_url: 'https://shop.example/p/2.jpg',
      category: ['Shoes', 'Running'],
      description: 'd'.repeat(1024),
      price: { USD: 40.9, EUR: 38 },
      original_price: { USD: 49.9 },
      in_stock: 0,
      variants: ['sku-00003'],
      brand: 'Acme',
      color: 'red',
      size: '42',
      groupcode: 'g-1',
      product_attributes: { material: 'leather', season: 'summer' },
    };
    const store = await startExtra({ items: ['p-1:tr_TR:store1'] });
    expect((await update(sim, [record])).body).toEqual(success(1));
    expect((await update(store, [{ item_id: 'p-1', locale: 'tr_TR:store1', in_stock: 2 }])).body).toEqual(success(1));
    const long = { item_id: 'i'.repeat(128), locale: 'en_US', in_stock: 1 };
    const withLong = await startExtra({ items: [`${'i'.repeat(128)}:en_US`] });
    expect((await update(withLong, [long])).body).toEqual(success(1));
  });

  it('ignores undefined top-level attributes silently', async () => {
    const res = await update(sim, [sku(3, { in_stock: 1, stock_code: 'x', rating: 4.5, nested: { a: 1 } })]);
    expect(res.body).toEqual(success(1));
  });

  it('groups invalid records and warnings by message, in order of first appearance', async () => {
    const res = await update(sim, [
      sku(1),
      sku(901),
      { locale: 'en_US', in_stock: 1 },
      sku(2, { product_attributes: { stock_code: '1', material: 'wool' } }),
      sku(902),
      sku(3, { in_stock: 'yes' }),
      'not a record',
      sku(4, { product_attributes: { stock_code: '2', colour_code: 'r' } }),
      sku(903, { product_attributes: { stock_code: '3' } }),
      { item_id: 'sku-00005', in_stock: 1 },
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(
      success(
        3,
        [
          {
            message: INSIDER_MESSAGES.notInCatalog,
            count: 3,
            document_ids: ['sku-00901:en_US', 'sku-00902:en_US', 'sku-00903:en_US'],
          },
          { message: INSIDER_MESSAGES.missingItemId, count: 1, document_ids: ['2'] },
          { message: 'in_stock must be an integer.', count: 1, document_ids: ['sku-00003:en_US'] },
          { message: INSIDER_MESSAGES.notAnObject, count: 1, document_ids: ['6'] },
          { message: INSIDER_MESSAGES.missingLocale, count: 1, document_ids: ['9'] },
        ],
        [
          {
            message: unknownAttributeWarning('stock_code'),
            count: 2,
            document_ids: ['sku-00002:en_US', 'sku-00004:en_US'],
          },
          { message: unknownAttributeWarning('colour_code'), count: 1, document_ids: ['sku-00004:en_US'] },
        ],
      ),
    );
    expect(res.body.message.invalidRatio).toBe(0.7);
  });

  it('rejects a record above maxRecordBytes', async () => {
    const strict = await startExtra({ maxRecordBytes: 300 });
    const fat = sku(1, { name: 'n'.repeat(500) });
    const res = await update(strict, [fat, sku(2)]);
    expect(res.body).toEqual(
      success(1, [
        {
          message: 'Product data exceeds the maximum allowed size of 300 bytes.',
          count: 1,
          document_ids: ['sku-00001:en_US'],
        },
      ]),
    );
  });
});

describe('request budget', () => {
  it('answers the 4th request within a minute 429 with Retry-After, counting it in rateLimited', async () => {
    const limited = await startExtra({ requestsPerMinute: 3 });
    for (let i = 0; i < 3; i++) expect((await update(limited, [SAMPLE])).status).toBe(200);
    expect(limited.rateLimited).toBe(0);
    const res = await update(limited, [SAMPLE]);
    expect(res.status).toBe(429);
    expect(res.body).toEqual({ status: false, message: 'Rate limit exceeded.' });
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.rateLimited).toBe(1);
    expect(limited.requests.map((r) => r.status)).toEqual([200, 200, 200, 429]);
  });

  it('slides a 60 s window over the admitted requests only', async () => {
    let now = 1_000_000;
    const limited = await startExtra({ requestsPerMinute: 2, now: () => now });
    expect((await update(limited, [SAMPLE])).status).toBe(200); // t = 0
    now += 20_000;
    // Rejected requests are admitted too: the budget is spent before the headers are checked.
    expect((await update(limited, [SAMPLE], { token: 'wrong' })).status).toBe(401); // t = 20 s
    now += 500;
    const first = await update(limited, [SAMPLE]);
    expect(first.status).toBe(429);
    expect(first.headers['retry-after']).toBe('40'); // the t = 0 slot frees at 60 s: 39.5 s, rounded up
    now += 39_499;
    expect((await update(limited, [SAMPLE])).status).toBe(429);
    now += 1;
    expect((await update(limited, [SAMPLE])).status).toBe(200); // t = 60 s
    // 429s were not admitted, so they did not push the window out.
    now += 20_000;
    expect((await update(limited, [SAMPLE])).status).toBe(200); // t = 80 s: the 20 s request has left
    expect(limited.rateLimited).toBe(2);
  });

  it('answers an injected status fault before the budget, without spending it', async () => {
    const limited = await startExtra({ requestsPerMinute: 1 });
    limited.faults.script({ kind: 'status', status: 503 }, { kind: 'status', status: 429, retryAfter: '9' });
    expect((await update(limited, [SAMPLE])).status).toBe(503);
    const injected = await update(limited, [SAMPLE]);
    expect(injected.status).toBe(429);
    expect(injected.headers['retry-after']).toBe('9');
    expect(limited.rateLimited).toBe(0);
    expect((await update(limited, [SAMPLE])).status).toBe(200);
    limited.faults.script({ kind: 'status', status: 500 });
    expect((await update(limited, [SAMPLE])).status).toBe(500);
    expect((await update(limited, [SAMPLE])).status).toBe(429);
    expect(limited.rateLimited).toBe(1);
  });

  it('starts over after reset() or POST /_sim/reset', async () => {
    const limited = await startExtra({ requestsPerMinute: 1 });
    await update(limited, [SAMPLE]);
    expect((await update(limited, [SAMPLE])).status).toBe(429);
    limited.reset();
    expect(limited.rateLimited).toBe(0);
    expect((await update(limited, [SAMPLE])).status).toBe(200);
    expect((await update(limited, [SAMPLE])).status).toBe(429);
    expect((await call(limited, undefined, { path: '/_sim/reset', raw: '' })).status).toBe(200);
    expect(limited.rateLimited).toBe(0);
    expect((await update(limited, [SAMPLE])).status).toBe(200);
  });

  it('can be turned off', async () => {
    const unlimited = await startExtra({ requestsPerMinute: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 70; i++) expect((await update(unlimited, [SAMPLE])).status).toBe(200);
  });
});

describe('recording', () => {
  it('records every API request in order without the token', async () => {
    await update(sim, [SAMPLE]);
    await update(sim, [SAMPLE], { token: 'tok-live-super-secret' });
    await update(sim, [SAMPLE], { partner: 'someone-else' });
    expect(sim.requests).toEqual([
      expect.objectContaining({ method: 'POST', path: '/v2/update', keyValid: true, status: 200, body: [SAMPLE] }),
      expect.objectContaining({ keyValid: false, status: 401 }),
      expect.objectContaining({ keyValid: false, status: 401 }),
    ]);
    expect(sim.requests[0]).not.toHaveProperty('fault');
    const listed = await call(sim, undefined, { method: 'GET', path: '/_sim/requests' });
    const exposed = JSON.stringify(sim.requests) + JSON.stringify(listed.body);
    expect(exposed).not.toContain(DEMO_INSIDER_TOKEN);
    expect(exposed).not.toContain('super-secret');
  });

  it('records an unparseable body as raw text', async () => {
    await call(sim, undefined, { raw: 'not json' });
    expect(sim.requests[0]).toMatchObject({ body: 'not json', status: 400, keyValid: true });
  });

  it('reset() clears the live requests array and the faults', async () => {
    const live = sim.requests;
    sim.faults.script({ kind: 'status', status: 503 });
    sim.reset();
    expect((await update(sim, [SAMPLE])).status).toBe(200);
    expect(live).toHaveLength(1);
    sim.reset();
    expect(live).toHaveLength(0);
  });
});

describe('faults', () => {
  it.each([
    [500, 'Internal server error.'],
    [503, 'Service temporarily unavailable.'],
    [502, 'Bad gateway.'],
  ])('answers an injected %i in Insider shape', async (status, message) => {
    sim.faults.script({ kind: 'status', status }, null);
    const res = await update(sim, [SAMPLE]);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ status: false, message });
    expect((await update(sim, [SAMPLE])).status).toBe(200);
    expect(sim.requests.map((r) => r.fault)).toEqual([`status:${status}`, undefined]);
  });

  it('overrides auth and validation: a status fault answers before the request is examined', async () => {
    sim.faults.script({ kind: 'status', status: 500 });
    const res = await call(sim, undefined, { partner: null, raw: 'garbage' });
    expect(res.status).toBe(500);
    expect(sim.requests[0]).toMatchObject({ keyValid: false, body: 'garbage', fault: 'status:500' });
  });

  it('sends a custom status body as given', async () => {
    sim.faults.script({ kind: 'status', status: 502, body: '<html>Bad Gateway</html>' });
    const res = await update(sim, [SAMPLE]);
    expect(res).toMatchObject({ status: 502, body: '<html>Bad Gateway</html>' });
  });

  it('delays the answer', async () => {
    sim.faults.script({ kind: 'delay', ms: 150 });
    const started = performance.now();
    const res = await update(sim, [SAMPLE]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(res.status).toBe(200);
    expect(sim.requests[0]?.fault).toBe('delay:150');
  });

  it('resets the connection before any response bytes', async () => {
    sim.faults.script({ kind: 'reset' });
    await expect(update(sim, [SAMPLE])).rejects.toThrow();
    expect(sim.requests[0]).toMatchObject({ fault: 'reset', status: 0, body: [SAMPLE] });
    expect((await update(sim, [SAMPLE])).status).toBe(200);
  });

  it('truncates the body and drops the connection', async () => {
    sim.faults.script({ kind: 'truncate' });
    const res = await request(`${sim.url}${INSIDER_UPDATE_PATH}`, {
      method: 'POST',
      headers: { 'x-partner-name': DEMO_INSIDER_PARTNER, 'x-request-token': DEMO_INSIDER_TOKEN },
      body: JSON.stringify([SAMPLE]),
    });
    expect(res.statusCode).toBe(200);
    await expect(res.body.text()).rejects.toThrow();
    expect(sim.requests[0]).toMatchObject({ fault: 'truncate', status: 200 });
  });

  it('reject-transient moves the first `count` valid records to invalid, dropping their warnings', async () => {
    sim.faults.script({ kind: 'reject-transient', code: 'temporarily_unavailable', count: 2 });
    const res = await update(sim, [
      sku(1, { product_attributes: { stock_code: '1' } }),
      sku(999),
      sku(2),
      sku(3, { product_attributes: { stock_code: '3' } }),
    ]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(
      success(
        1,
        [
          { message: 'temporarily_unavailable', count: 2, document_ids: ['sku-00001:en_US', 'sku-00002:en_US'] },
          { message: INSIDER_MESSAGES.notInCatalog, count: 1, document_ids: ['sku-00999:en_US'] },
        ],
        [{ message: unknownAttributeWarning('stock_code'), count: 1, document_ids: ['sku-00003:en_US'] }],
      ),
    );
    expect(sim.requests[0]?.fault).toBe('reject-transient:temporarily_unavailable');
  });

  it('reject-transient rejects every valid record by default', async () => {
    sim.faults.script({ kind: 'reject-transient', code: 'busy' });
    const res = await update(sim, [sku(1), sku(2)]);
    expect(res.body).toEqual(
      success(0, [{ message: 'busy', count: 2, document_ids: ['sku-00001:en_US', 'sku-00002:en_US'] }]),
    );
  });

  it('adds the configured latency to every answer', async () => {
    const slow = await startExtra({ latencyMs: 120 });
    const started = performance.now();
    expect((await update(slow, [SAMPLE])).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });
});

describe('HTTP control for a developer', () => {
  const control = (method: 'POST' | 'DELETE' | 'GET', path: string, body?: unknown): Promise<Answer> =>
    call(sim, body, { method, path, partner: null, token: null });

  it('scripts faults, lists requests, clears and resets', async () => {
    const set = await control('POST', '/_sim/faults', {
      script: [{ kind: 'status', status: 429, retryAfter: 3 }, null, { kind: 'reject-transient', code: 'busy' }],
    });
    expect(set).toMatchObject({ status: 200, body: { ok: true, pending: 3 } });
    const first = await update(sim, [SAMPLE]);
    expect(first).toMatchObject({ status: 429, body: { status: false, message: 'Rate limit exceeded.' } });
    expect(first.headers['retry-after']).toBe('3');
    expect(sim.rateLimited).toBe(0);
    expect((await update(sim, [SAMPLE])).body).toEqual(success(1));
    expect((await update(sim, [SAMPLE])).body.message.invalid.details[0].message).toBe('busy');

    const listed = await control('GET', '/_sim/requests');
    expect(listed.body.map((r: { status: number }) => r.status)).toEqual([429, 200, 200]);

    await control('POST', '/_sim/faults', { rate: 1, faults: [{ kind: 'status', status: 500 }] });
    expect((await update(sim, [SAMPLE])).status).toBe(500);
    expect((await control('DELETE', '/_sim/faults')).status).toBe(200);
    expect((await update(sim, [SAMPLE])).status).toBe(200);

    expect((await control('POST', '/_sim/reset')).status).toBe(200);
    expect(sim.requests).toHaveLength(0);
  });

  it('answers 422 naming the problem for an invalid fault', async () => {
    const res = await control('POST', '/_sim/faults', { script: [{ kind: 'explode' }] });
    expect(res.status).toBe(422);
    expect(res.body.error.message).toMatch(/script\[0\]\.kind/);
  });
});

describe('lifecycle', () => {
  it('starts with the demo catalog by default and closes promptly with a request stuck in a delay', async () => {
    const own = await startExtra({});
    expect((await update(own, [SAMPLE])).status).toBe(200);
    own.faults.script({ kind: 'delay', ms: 60_000 });
    const stuck = update(own, [SAMPLE]);
    stuck.catch(() => undefined);
    await expect.poll(() => own.requests.length).toBe(2);
    const started = performance.now();
    await own.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(stuck).rejects.toThrow();
  });

  it('main.ts prints the Insider URL, partner and token, serves the demo catalog and stops on SIGTERM', async () => {
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
          const found = out.split('\n').find((l) => l.startsWith('Insider'));
          if (found !== undefined && out.includes(`${found}\n`)) resolve(found);
        });
        child.once('exit', (code) => reject(new Error(`main.ts exited early with ${code}`)));
      });
      expect(line).toContain(DEMO_INSIDER_PARTNER);
      expect(line).toContain(DEMO_INSIDER_TOKEN);
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0];
      expect(url).toBeDefined();
      const res = await update({ url: url ?? '' }, [SAMPLE, sku(999)]);
      expect(res.status).toBe(200);
      expect(res.body.message.valid.count).toBe(1);
      expect(res.body.message.invalid.details[0].message).toBe(INSIDER_MESSAGES.notInCatalog);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 20_000);
});
