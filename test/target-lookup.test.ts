/**
 * "Where is this product?" through the real server, a real worker, the Insider simulator and the
 * target-state store on SQLite and on PostgreSQL: after syncs started by two scoped callers of the
 * HTTP front, `catalog-sync target show|list` names each item's state and sync (with its UI link),
 * and GET /v1/targets/{provider}/{identity} answers the same, each caller seeing only its own items.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { awaitReport } from '../client/index.ts';
import { startHttpFront, type RunningHttpFront } from '../http/http-front.ts';
import { openStateStore } from '../activities/state/index.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { runCli } from './helpers/processes.ts';
import { STORE_KINDS, freshStateUrl } from './helpers/state.ts';
import { connectTestEnv, makeWorker, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';
import type { SyncWorker } from '../worker/worker.ts';

const PARTNER = 'lookup-partner';
const TOKEN = 'lookup-insider-token';
const OPERATOR = 'operator-token';
const ALPHA = 'alpha-token';
const BETA = 'beta-token';
const items = makeInsiderItems(50);

let t: TemporalTestEnv;
let sim: InsiderSimulator;

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startInsiderSimulator({ partnerName: PARTNER, token: TOKEN, items, requestsPerMinute: Infinity });
});
afterAll(async () => {
  await sim?.close();
  await t?.close();
});

describe.each(STORE_KINDS)('target lookup on %s', (kind) => {
  let stateUrl: string;
  let front: RunningHttpFront;
  let worker: SyncWorker;
  let running: Promise<void>;
  let store: ReturnType<typeof openStateStore>;
  const syncs: Record<string, string> = {};
  const call = async (path: string, token: string) => {
    const res = await request(`${front.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const cliEnv = () => ({
    CATALOG_SYNC_STATE_URL: stateUrl,
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
    TEMPORAL_UI_URL: 'http://ui.example:8233',
  });

  beforeAll(async () => {
    stateUrl = await freshStateUrl(kind, 'lookup');
    const taskQueue = uniqueTaskQueue('lookup');
    worker = await makeWorker(t, {
      taskQueue,
      env: {
        INSIDER_BASE_URL: sim.url,
        INSIDER_PARTNER_NAME: PARTNER,
        INSIDER_REQUEST_TOKEN: TOKEN,
        INSIDER_REQUESTS_PER_MINUTE: '6000',
        CATALOG_SYNC_STATE_URL: stateUrl,
      },
    });
    running = worker.run();
    store = openStateStore({ CATALOG_SYNC_STATE_URL: stateUrl });
    front = await startHttpFront({
      client: t.client,
      taskQueue,
      tokens: [OPERATOR, `alpha=${ALPHA}`, `beta=${BETA}`],
      logger: false,
      port: 0,
      stateStore: store,
      ui: { uiUrl: 'http://ui.example:8233', namespace: inject('temporalNamespace') },
    });
    const [item_id, locale] = items[0]!.split(':');
    const [item_b, locale_b] = items[1]!.split(':');
    const targets: Record<string, unknown[]> = {
      [ALPHA]: [
        { item_id, locale, in_stock: 1 },
        { item_id: 'gone-a', locale: 'en_US', in_stock: 1 },
      ],
      [BETA]: [
        { item_id: item_b, locale: locale_b, in_stock: 0 },
        { item_id: 'gone-b', locale: 'en_US', in_stock: 1 },
      ],
    };
    for (const token of [ALPHA, BETA]) {
      const res = await request(`${front.url}/v1/syncs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ provider: 'insider', targets: targets[token], options: { resubmissionWindow: '0s' } }),
      });
      const body = (await res.body.json()) as { workflowId: string };
      expect(res.statusCode).toBe(202);
      syncs[token] = body.workflowId;
      await awaitReport(t.client, body.workflowId);
    }
  });
  afterAll(async () => {
    await front?.close();
    await store?.close();
    worker?.shutdown();
    await running;
  });

  it('`target show` names the state, when, and the sync with its UI link', async () => {
    const shown = await runCli(['target', 'show', '--provider', 'insider', items[0]!], cliEnv());
    expect(shown.stderr).toBe('');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`insider ${items[0]}: accepted`);
    expect(shown.stdout).toContain(syncs[ALPHA]);
    expect(shown.stdout).toContain(
      `http://ui.example:8233/namespaces/${inject('temporalNamespace')}/workflows/${encodeURIComponent(syncs[ALPHA]!)}`,
    );
    const json = await runCli(['target', 'show', '--provider', 'insider', 'gone-b:en_US', '--json'], cliEnv());
    expect(JSON.parse(json.stdout)).toMatchObject({
      identity: 'gone-b:en_US',
      state: 'rejected',
      code: expect.any(String),
      message: expect.any(String),
      syncId: syncs[BETA],
      caller: 'beta',
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('`target list --state rejected` pages through them, one line per item', async () => {
    const first = await runCli(
      ['target', 'list', '--provider', 'insider', '--state', 'rejected', '--limit', '1'],
      cliEnv(),
    );
    expect(first.code).toBe(0);
    const lines = first.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^gone-[ab]:en_US\trejected\t/);
    const more = /--after (\S+)$/.exec(lines[1] ?? '')?.[1];
    expect(more).toBeDefined();
    const second = await runCli(
      ['target', 'list', '--provider', 'insider', '--state', 'rejected', '--limit', '1', '--after', more!, '--json'],
      cliEnv(),
    );
    const page = JSON.parse(second.stdout) as { items: { identity: string }[]; next?: string };
    expect(page.items).toHaveLength(1);
    expect(page.next).toBeUndefined();
    expect([lines[0]!.split('\t')[0], page.items[0]!.identity].sort()).toEqual(['gone-a:en_US', 'gone-b:en_US']);
  });

  it('answers mistakes in one line naming the fix', async () => {
    const unknown = await runCli(['target', 'show', '--provider', 'nope', 'x'], cliEnv());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^catalog-sync: unknown provider "nope": use one of .*insider.*\n$/);
    const missing = await runCli(['target', 'show', '--provider', 'insider', 'never-sent:en_US'], cliEnv());
    expect(missing.stderr).toMatch(/^catalog-sync: no answer recorded for insider item "never-sent:en_US": check/);
    const badState = await runCli(['target', 'list', '--provider', 'insider', '--state', 'lost'], cliEnv());
    expect(badState.stderr).toMatch(/^catalog-sync: .*lost.*accepted, rejected, failed, superseded/);
    const badCursor = await runCli(['target', 'list', '--provider', 'insider', '--after', 'bm9wZQ'], cliEnv());
    expect(badCursor.stderr).toBe('catalog-sync: after must be the `next` cursor of the page before\n');
  });

  it('GET /v1/targets/{provider}/{identity} scopes items by caller like syncs', async () => {
    const path = `/v1/targets/insider/${encodeURIComponent(items[0]!)}`;
    const own = await call(path, ALPHA);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({
      provider: 'insider',
      identity: items[0],
      items: [{ state: 'accepted', syncId: syncs[ALPHA], syncUrl: expect.stringContaining('/workflows/') }],
    });
    expect(JSON.stringify(own.body)).not.toContain('"caller"');
    const other = await call(path, BETA);
    expect(other).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect((await call(`/v1/targets/insider/${encodeURIComponent(items[1]!)}`, ALPHA)).status).toBe(404);
    expect((await call(`/v1/targets/insider/${encodeURIComponent(items[1]!)}`, BETA)).status).toBe(200);
    expect((await call(path, OPERATOR)).status).toBe(200);
    expect(await call('/v1/targets/nope/x', OPERATOR)).toMatchObject({ status: 400 });
  });
});

describe('a store the CLI cannot reach', () => {
  it('says so in one line naming the store, never its password', async () => {
    const url = new URL(await freshStateUrl('postgres', 'cli_down'));
    url.port = '1';
    const res = await runCli(['target', 'show', '--provider', 'insider', 'x:en_US'], {
      CATALOG_SYNC_STATE_URL: url.toString(),
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^catalog-sync: the target-state store \(postgres 127\.0\.0\.1:1\/cli_down_\w+\) cannot be read: .*\n$/,
    );
    expect(res.stderr).not.toContain(url.password);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('stops a worker at start on a URL it cannot use, naming the variable and never the value', async () => {
    const res = await runCli(['worker'], {
      OCTOGEN_PLATFORM_API_KEY: 'k',
      CATALOG_SYNC_STATE_URL: 'mysql://sync:s3cret-pw@db.internal/catalog',
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^catalog-sync: CATALOG_SYNC_STATE_URL has the scheme "mysql:": use postgres:\/\//);
    expect(res.stderr).not.toContain('s3cret');
  });
});
