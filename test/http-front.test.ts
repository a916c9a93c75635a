/**
 * The HTTP front over real HTTP: a real Temporal dev server, a real worker, the Octogen simulator.
 * Every answer is checked against the response schema the server's own OpenAPI document declares
 * for its route and status.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpFront, tokenChecker, type RunningHttpFront } from '../http/http-front.ts';
import { SyncKeyConflictError, awaitReport, startSync, syncWorkflowId } from '../client/index.ts';
import { MAX_ITEMS_PER_RESUBMISSION } from '../contracts/index.ts';
import { countsAddUp, type SyncReport } from '../contracts/index.ts';
import { startNdjsonHost, type NdjsonHost } from '../simulators/ndjson-host.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { runCli } from './helpers/processes.ts';
import {
  connectTestEnv,
  makeWorker,
  uniqueKey,
  uniqueTaskQueue,
  workerProcessEnv,
  type TemporalTestEnv,
} from './helpers/temporal.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const KEY = 'test-octogen-key';
const TOKEN = 'http-front-token-1';
const OTHER_TOKEN = 'http-front-token-2';
const SHOP_A = 'scoped-token-shop-a';
const SHOP_B = 'scoped-token-shop-b';
const alpha = makeOctogenProducts('alpha', 40);
const missingUrl = 'https://alpha.com/products/does-not-exist';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let insiderSim: InsiderSimulator;
let host: NdjsonHost;
let front: RunningHttpFront;
let stopWorker: () => Promise<void>;
let taskQueue: string;
let doc: OpenApiDoc;
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** JSON pointer escaping, for a $ref into the document's paths. */
const pointer = (s: string): string => s.replaceAll('~', '~0').replaceAll('/', '~1');
const validators = new Map<string, ValidateFunction>();

/** The document's response schema for a route and status, compiled once. */
function responseValidator(method: string, route: string, status: number): ValidateFunction {
  const where = `${method} ${route} ${status}`;
  let validate = validators.get(where);
  if (!validate) {
    const response = doc.paths[route]?.[method.toLowerCase()]?.responses[String(status)];
    if (!response) throw new Error(`the OpenAPI document declares no ${status} answer for ${method} ${route}`);
    validate = ajv.compile({
      $ref: `openapi.json#/paths/${pointer(route)}/${method.toLowerCase()}/responses/${status}/content/${pointer('application/json')}/schema`,
    });
    validators.set(where, validate);
  }
  return validate;
}

function expectMatchesDocument(method: string, route: string, answer: Answer): void {
  const validate = responseValidator(method, route, answer.status);
  const ok = validate(answer.body);
  expect(ok, `${method} ${route} ${answer.status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

/**
 * Calls the front over HTTP. `route` is the document's path template; `params` fill it in. The
 * answer is checked against the document before it is returned.
 */
async function call(
  method: 'GET' | 'POST',
  route: string,
  opts: {
    params?: Record<string, string>;
    body?: unknown;
    token?: string | null;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const url = route.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(opts.params?.[name] ?? ''));
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await request(`${front.url}${url}`, {
    method,
    headers: {
      ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const answer = { status: res.statusCode, headers: res.headers, body: await res.body.json() };
  expectMatchesDocument(method, route, answer);
  return answer;
}

const submit = (body: unknown, token?: string | null) =>
  call('POST', '/v1/syncs', { body, ...(token !== undefined ? { token } : {}) });
const status = (id: string) => call('GET', '/v1/syncs/{id}', { params: { id } });

/**
 * Sends anything (any method, raw body, any headers) and checks the answer is the document's Error
 * shape: for answers no operation declares, such as a 405 for a method no route has.
 */
async function raw(
  method: string,
  url: string,
  opts: { body?: string; headers?: Record<string, string>; token?: string | null } = {},
): Promise<Answer> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await request(`${front.url}${url}`, {
    method,
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...opts.headers },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const answer = { status: res.statusCode, headers: res.headers, body: await res.body.json() };
  const validate = ajv.getSchema('openapi.json#/components/schemas/Error')!;
  expect(validate(answer.body), `${method} ${url} ${answer.status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  expect(answer.headers['x-request-id']).toMatch(UUID);
  return answer;
}

const messageOf = (answer: Answer): string => (answer.body as { error: { message: string } }).error.message;

/** Polls GET /v1/syncs/{id} (each answer checked against the document) until `done` holds. */
async function statusUntil(id: string, done: (r: SyncReport) => boolean): Promise<SyncReport> {
  for (let i = 0; ; i++) {
    const answer = await status(id);
    expect(answer.status).toBe(200);
    const report = answer.body as SyncReport;
    if (done(report)) return report;
    if (i > 400) throw new Error(`sync ${id} never reached the expected state: ${JSON.stringify(report.counts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exists = (workflowId: string): Promise<boolean> =>
  t.client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      },
    );

beforeAll(async () => {
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products: alpha });
  insiderSim = await startInsiderSimulator({
    partnerName: 'http-partner',
    token: 'http-insider-token',
    items: makeInsiderItems(5),
  });
  // The operator's allowlist of target sources: the front and the worker both read it.
  host = await startNdjsonHost();
  const sources = `${host.url}/catalogs/`;
  process.env.CATALOG_SYNC_SOURCE_URLS = sources;
  taskQueue = uniqueTaskQueue('http-front');
  const worker = await makeWorker(t, {
    taskQueue,
    env: {
      OCTOGEN_BASE_URL: sim.url,
      OCTOGEN_PLATFORM_API_KEY: KEY,
      INSIDER_BASE_URL: insiderSim.url,
      INSIDER_PARTNER_NAME: 'http-partner',
      INSIDER_REQUEST_TOKEN: 'http-insider-token',
      CATALOG_SYNC_SOURCE_URLS: sources,
    },
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
  };
  front = await startHttpFront({
    client: t.client,
    taskQueue,
    tokens: [TOKEN, OTHER_TOKEN, `shop-a=${SHOP_A}`, `shop-b=${SHOP_B}`],
    logger: false,
    port: 0,
  });
  const res = await request(`${front.url}/openapi.json`);
  expect(res.statusCode).toBe(200);
  doc = (await res.body.json()) as OpenApiDoc;
  ajv.addSchema(doc, 'openapi.json');
});

afterAll(async () => {
  await front?.close();
  await stopWorker?.();
  await sim?.close();
  await insiderSim?.close();
  await host?.close();
  delete process.env.CATALOG_SYNC_SOURCE_URLS;
  await t?.close();
});

describe('the OpenAPI document', () => {
  it('lists every route with its answers, and the server serves each of them', async () => {
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual(
      [
        'GET /healthz',
        'GET /openapi.json',
        'POST /v1/syncs',
        'POST /v1/dry-runs',
        'GET /v1/syncs/{id}',
        'POST /v1/syncs/{id}/resubmit',
        'POST /v1/syncs/{id}/finish',
        'GET /v1/targets/{provider}/{identity}',
      ].sort(),
    );
    for (const route of routes) {
      const [method, path] = route.split(' ') as ['GET' | 'POST', string];
      expect(front.app.hasRoute({ method, url: path.replace(/\{(\w+)\}/g, ':$1') }), route).toBe(true);
    }
    expect(doc.paths['/v1/syncs']?.post?.responses).toHaveProperty('202');
    expect(doc.paths['/v1/syncs']?.post?.responses).toHaveProperty('400');
    expect(doc.paths['/v1/syncs/{id}']?.get?.responses).toHaveProperty('404');
    // Open routes say so; the others inherit the document's bearer requirement.
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
    expect(doc.paths['/openapi.json']?.get?.security).toEqual([]);
    expect(doc.paths['/v1/syncs']?.post?.security).toBeUndefined();
    expect(doc).toMatchObject({ openapi: '3.1.0', security: [{ bearer: [] }] });
  });

  it('is served without a token, as is /healthz, and its schemas are not vacuous', async () => {
    const health = await call('GET', '/healthz', { token: null });
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
    const self = await call('GET', '/openapi.json', { token: null });
    expect(self.body).toEqual(doc);
    // The checks above would catch a wrong answer: the document's schemas reject one.
    expect(responseValidator('POST', '/v1/syncs', 202)({ workflowId: 'x', accepted: [] })).toBe(false);
    expect(responseValidator('GET', '/v1/syncs/{id}', 200)({ workflowId: 'x' })).toBe(false);
  });
});

describe('POST /v1/syncs', () => {
  it('answers 202 with the accepted and the malformed targets, and the sync counts every target sent', async () => {
    const key = uniqueKey('http');
    const targets = [
      { uuid: alpha[0]!.uuid },
      { uuid: alpha[1]!.uuid, url: alpha[1]!.url }, // both: malformed
      { url: alpha[2]!.url },
      { url: 'not a url' }, // malformed
    ];
    const answer = await submit({ provider: 'octogen', key, targets, options: { resubmissionWindow: '0s' } });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({
      requestId: expect.stringMatching(UUID),
      workflowId: syncWorkflowId('octogen', key),
      workflowError: null,
      submitted: 4,
      accepted: [targets[0], targets[2]],
      rejected: [
        { index: 1, target: targets[1], code: 'invalid_target', message: expect.stringMatching(/both url and uuid/) },
        { index: 3, target: targets[3], code: 'invalid_target', message: expect.stringMatching(/url/) },
      ],
      started: true,
    });
    // The request's own ID, in the answer and in its header.
    expect(answer.headers['x-request-id']).toBe((answer.body as { requestId: string }).requestId);
    const { report } = await awaitReport(t.client, syncWorkflowId('octogen', key));
    expect(report.counts).toMatchObject({ submitted: 4, accepted: 2, rejected: 2 });
    expect(report.rejected.map((r) => [r.id, r.code])).toEqual([
      ['t1', 'invalid_target'],
      ['t3', 'invalid_target'],
    ]);
  });

  it('answers 400 with the same shape, and starts nothing, when every target is malformed', async () => {
    const key = uniqueKey('http-none');
    const targets = [{ catalog: 'alpha' }, 'not an object', { uuid: 'nope' }];
    const answer = await submit({ provider: 'octogen', key, targets });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ workflowId: null, submitted: 3, accepted: [], started: false });
    expect((answer.body as { workflowError: string }).workflowError).toMatch(/no target passed validation.*fix/);
    const rejected = (answer.body as { rejected: { index: number; code: string; message: string }[] }).rejected;
    expect(rejected.map((r) => [r.index, r.code])).toEqual([
      [0, 'invalid_target'],
      [1, 'invalid_target'],
      [2, 'invalid_target'],
    ]);
    expect(rejected[0]?.message).toMatch(/neither url nor uuid/);
    expect(rejected[2]?.message).toMatch(/uuid must be a UUID/);
    expect(await exists(syncWorkflowId('octogen', key))).toBe(false);
  });

  it('takes the key as an idempotency key: the same key names the same sync and starts nothing new', async () => {
    const key = uniqueKey('http-again');
    const body = {
      provider: 'octogen',
      key,
      targets: [{ uuid: alpha[3]!.uuid }],
      options: { resubmissionWindow: '0s' },
    };
    const first = await submit(body);
    const second = await submit(body, OTHER_TOKEN);
    expect(first).toMatchObject({ status: 202, body: { workflowId: syncWorkflowId('octogen', key), started: true } });
    expect(second).toMatchObject({ status: 202, body: { workflowId: syncWorkflowId('octogen', key), started: false } });
    const { report } = await awaitReport(t.client, syncWorkflowId('octogen', key));
    expect(report.counts).toMatchObject({ submitted: 1, accepted: 1 });
  });

  it('answers the same key with the same request with the existing sync, and a different request with 409', async () => {
    const key = uniqueKey('http-idem');
    const id = syncWorkflowId('octogen', key);
    const body = {
      provider: 'octogen',
      key,
      targets: [{ uuid: alpha[12]!.uuid }, { url: 'not a url' }],
      options: { resubmissionWindow: '10m' },
    };
    const first = await submit(body);
    expect(first).toMatchObject({ status: 202, body: { workflowId: id, started: true, workflowError: null } });
    // The same request again, its fields in another order: the existing sync, nothing new.
    const again = await submit({ options: body.options, targets: body.targets, key, provider: 'octogen' });
    expect(again).toMatchObject({
      status: 202,
      body: { workflowId: id, started: false, workflowError: null, submitted: 2, accepted: [body.targets[0]] },
    });
    expect((again.body as { requestId: string }).requestId).not.toBe((first.body as { requestId: string }).requestId);

    // Different targets, different options, the targets by reference: each a conflict naming the key.
    const url = host.put(`catalogs/${key}.ndjson`, `${JSON.stringify({ uuid: alpha[12]!.uuid })}\n`);
    for (const changed of [
      { ...body, targets: [{ uuid: alpha[13]!.uuid }] },
      { ...body, options: { resubmissionWindow: '20m' } },
      { provider: 'octogen', key, targetsRef: { url }, options: body.options },
    ]) {
      const conflict = await submit(changed);
      expect(conflict).toMatchObject({ status: 409, body: { error: { code: 'key_conflict' } } });
      expect(messageOf(conflict)).toContain(`key "${key}"`);
      expect(messageOf(conflict)).toMatch(/use a new key.*or resend the same request/);
    }
    // The sync itself never saw the other requests.
    const report = await statusUntil(id, (r) => r.firstPassSettled);
    expect(report.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });
    await call('POST', '/v1/syncs/{id}/finish', { params: { id } });

    // The library says the same, with an error the CLI prints as its one line.
    const library = startSync(t.client, { ...body, targets: [{ uuid: alpha[14]!.uuid }] }, taskQueue);
    await expect(library).rejects.toBeInstanceOf(SyncKeyConflictError);
    await expect(library).rejects.toThrow(new RegExp(`^key "${key}" already names sync ${id}, .*use a new key`));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'http-front-cli-'));
    try {
      const file = path.join(dir, 'targets.json');
      await writeFile(file, JSON.stringify([{ uuid: alpha[14]!.uuid }]));
      const cli = await runCli(
        ['submit', '--provider', 'octogen', '--targets', file, '--key', key, '--window', '10m'],
        workerProcessEnv(taskQueue),
      );
      expect(cli.code).not.toBe(0);
      expect(cli.stdout).toBe('');
      expect(cli.stderr).toMatch(
        new RegExp(`^catalog-sync: key "${key}" already names sync ${id}, .*use a new key.*\\n$`),
      );
      expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps a scoped caller\u2019s key its own in a conflict: the message names the key it sent', async () => {
    const key = uniqueKey('http-idem-scoped');
    const body = { provider: 'octogen', key, targets: [{ url: missingUrl }], options: { resubmissionWindow: '0s' } };
    expect((await submit(body, SHOP_A)).status).toBe(202);
    expect(await submit(body, SHOP_A)).toMatchObject({ status: 202, body: { started: false } });
    const conflict = await submit({ ...body, targets: [{ url: `${missingUrl}-2` }] }, SHOP_A);
    expect(conflict).toMatchObject({ status: 409, body: { error: { code: 'key_conflict' } } });
    expect(messageOf(conflict)).toContain(`key "${key}"`);
    expect(messageOf(conflict)).not.toContain(`shop-a.${key}"`);
  });

  it('starts a sync by reference at once: the sync itself validates those targets', async () => {
    const url = host.put(
      `catalogs/${uniqueKey('ref')}.ndjson`,
      `${JSON.stringify({ uuid: alpha[11]!.uuid })}\n${JSON.stringify({ url: 'nope' })}\n`,
    );
    const key = uniqueKey('http-ref');
    const answer = await submit({
      provider: 'octogen',
      key,
      targetsRef: { url },
      options: { resubmissionWindow: '0s' },
    });
    expect(answer).toMatchObject({
      status: 202,
      body: {
        workflowId: syncWorkflowId('octogen', key),
        workflowError: null,
        submitted: null,
        accepted: [],
        rejected: [],
        started: true,
      },
    });
    const { report } = await awaitReport(t.client, syncWorkflowId('octogen', key));
    expect(report.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });
    expect(report.rejected[0]).toMatchObject({ id: 't1', line: 2, code: 'invalid_target' });
  });

  it('refuses a request that is not a sync request with an error naming the field', async () => {
    const wrongType = await submit({ provider: 'octogen', targets: 'not a list' });
    expect(wrongType).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect((wrongType.body as { error: { message: string } }).error.message).toMatch(/^targets: /);

    const unknownProvider = await submit({ provider: 'nobody', targets: [{}] });
    expect(unknownProvider).toMatchObject({ status: 400, body: { error: { code: 'unknown_provider' } } });
    expect((unknownProvider.body as { error: { message: string } }).error.message).toMatch(/provider.*octogen/);

    const both = await submit({ provider: 'octogen', targets: [], targetsRef: { file: '/tmp/x.ndjson' } });
    expect(both).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect((both.body as { error: { message: string } }).error.message).toMatch(/exactly one of targets/);

    const badOption = await submit({ provider: 'octogen', targets: [{ uuid: alpha[4]!.uuid }], options: { nope: 1 } });
    expect(badOption).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect((badOption.body as { error: { message: string } }).error.message).toMatch(/^options: .*nope/);
  });
});

describe('bad requests get a clear 4xx naming the limit and the fix, never a 5xx', () => {
  it('answers a method no route has with 405 and the methods it allows', async () => {
    const cases: [string, string, string][] = [
      ['GET', '/v1/syncs', 'POST'],
      ['PUT', '/v1/syncs', 'POST'],
      ['DELETE', '/v1/syncs/catalog-sync-octogen-x', 'GET, HEAD'],
      ['PATCH', '/v1/syncs/catalog-sync-octogen-x/resubmit', 'POST'],
      ['GET', '/v1/syncs/catalog-sync-octogen-x/finish', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['TRACE', '/openapi.json', 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const answer = await raw(method, url);
      expect(answer, `${method} ${url}`).toMatchObject({
        status: 405,
        body: { error: { code: 'method_not_allowed' } },
      });
      expect(answer.headers.allow).toBe(allow);
      expect(messageOf(answer)).toContain(`use ${allow}`);
    }
    // An unknown path is still a 404.
    expect((await raw('DELETE', '/v1/nothing-here')).status).toBe(404);
  });

  it('answers a body that is not JSON with 415 saying which content type to send', async () => {
    for (const headers of [
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/x-www-form-urlencoded' },
      {},
    ]) {
      const answer = await raw('POST', '/v1/syncs', { headers, body: 'provider=octogen' });
      expect(answer).toMatchObject({ status: 415, body: { error: { code: 'unsupported_media_type' } } });
      expect(messageOf(answer)).toMatch(/send Content-Type: application\/json/);
    }
  });

  it('answers a body over the limit with 413 naming the limit and pointing to targetsRef', async () => {
    const targets = Array.from({ length: 400_000 }, (_, i) => ({ url: `https://alpha.com/products/p-${i}` }));
    const body = JSON.stringify({ provider: 'octogen', targets, options: { resubmissionWindow: '0s' } });
    expect(body.length).toBeGreaterThan(16 * 1024 * 1024);
    const answer = await raw('POST', '/v1/syncs', { headers: { 'content-type': 'application/json' }, body });
    expect(answer).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(messageOf(answer)).toMatch(/limit of 16 MiB.*targetsRef.*split/);
  });

  it('refuses JSON nested past the limit, and text that is not well-formed Unicode, naming the field', async () => {
    const headers = { 'content-type': 'application/json' };
    const deep = await raw('POST', '/v1/syncs', {
      headers,
      body: `{"provider":"octogen","targets":[${'['.repeat(10_000)}${']'.repeat(10_000)}]}`,
    });
    expect(deep).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(messageOf(deep)).toMatch(/nested more than 64 levels.*limit is 64/);

    const key = uniqueKey('surrogate');
    const lone = await raw('POST', '/v1/syncs', {
      headers,
      body: `{"provider":"octogen","key":"${key}\\ud800","targets":[{"uuid":"${alpha[15]!.uuid}"}]}`,
    });
    expect(lone).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect(messageOf(lone)).toMatch(/^key: .*not well-formed Unicode/);
    const inTarget = await raw('POST', '/v1/syncs', {
      headers,
      body: `{"provider":"octogen","targets":[{"uuid":"${alpha[15]!.uuid}"},{"url":"https://alpha.com/\\udc00"}]}`,
    });
    expect(inTarget).toMatchObject({ status: 400 });
    expect(messageOf(inTarget)).toMatch(/^targets\.1\.url: /);
    expect(await exists(syncWorkflowId('octogen', `${key}\ud800`))).toBe(false);
  });

  it('refuses a re-submission of 100,000 items at once, naming the item limit, and the sync stays as it was', async () => {
    const key = uniqueKey('http-big-resubmit');
    const id = syncWorkflowId('octogen', key);
    await submit({ provider: 'octogen', key, targets: [{ url: missingUrl }], options: { resubmissionWindow: '10m' } });
    const before = await statusUntil(id, (r) => r.firstPassSettled);
    const limit = MAX_ITEMS_PER_RESUBMISSION.toLocaleString('en-US');
    const headers = { 'content-type': 'application/json' };
    // Real targets: the body alone is over the re-submission limit.
    const items = Array.from({ length: 100_000 }, (_, i) => ({ fixes: 't0', target: { url: `${missingUrl}-${i}` } }));
    const large = await raw('POST', `/v1/syncs/${id}/resubmit`, { headers, body: JSON.stringify({ items }) });
    expect(large).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    expect(messageOf(large)).toContain(`at most ${limit} items`);
    // Tiny items: within the body limit, over the item limit.
    const many = await raw('POST', `/v1/syncs/${id}/resubmit`, {
      headers,
      body: JSON.stringify({ items: Array.from({ length: 100_000 }, () => ({})) }),
    });
    expect(many).toMatchObject({ status: 400, body: { error: { code: 'too_many_items' } } });
    expect(messageOf(many)).toMatch(
      new RegExp(`^items: 100,000 items, over the limit of ${limit} .*at most ${limit} items`),
    );
    const after = await status(id);
    expect(after.body).toMatchObject({ counts: before.counts, refused: [] });
    await call('POST', '/v1/syncs/{id}/finish', { params: { id } });
  });
});

describe('a sync through its life: status, re-submission, finish', () => {
  it('reports status, takes a correction with its answer, finishes on request, then says it is closed', async () => {
    const key = uniqueKey('http-life');
    const id = syncWorkflowId('octogen', key);
    const started = await submit({
      provider: 'octogen',
      key,
      targets: [{ uuid: alpha[5]!.uuid }, { url: missingUrl }, { url: missingUrl.replace('does-not', 'also-not') }],
      options: { resubmissionWindow: '10m' },
    });
    expect(started).toMatchObject({ status: 202, body: { workflowId: id, started: true } });

    const settled = await statusUntil(id, (r) => r.firstPassSettled);
    expect(settled).toMatchObject({ workflowId: id, provider: 'octogen', phase: 'open' });
    expect(settled.counts).toMatchObject({ submitted: 3, accepted: 1, rejected: 2, pending: 0 });
    expect(settled.rejected.map((r) => [r.id, r.code])).toEqual([
      ['t1', 'product_not_found'],
      ['t2', 'product_not_found'],
    ]);
    expect(countsAddUp(settled.counts)).toBe(true);

    const fixed = await call('POST', '/v1/syncs/{id}/resubmit', {
      params: { id },
      body: {
        items: [
          { fixes: 't1', target: { url: alpha[6]!.url } },
          { fixes: 't9', target: { url: alpha[7]!.url } },
        ],
      },
    });
    expect(fixed.status).toBe(200);
    expect(fixed.body).toMatchObject({
      taken: [{ index: 0, id: 't3', supersedes: 't1' }],
      refused: [{ index: 1, fixes: 't9' }],
    });

    const malformed = await call('POST', '/v1/syncs/{id}/resubmit', { params: { id }, body: { items: [] } });
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'invalid_request' } } });
    expect((malformed.body as { error: { message: string } }).error.message).toMatch(/^items: /);

    const after = await statusUntil(id, (r) => r.counts.pending === 0 && r.counts.superseded === 1);
    expect(after.counts).toMatchObject({ submitted: 4, accepted: 2, rejected: 1, superseded: 1 });

    // Clients that always send a JSON content type may send it with no body.
    const finishing = await call('POST', '/v1/syncs/{id}/finish', {
      params: { id },
      headers: { 'content-type': 'application/json' },
    });
    expect(finishing).toEqual({ status: 202, headers: expect.anything(), body: { workflowId: id, finishing: true } });
    const { report } = await awaitReport(t.client, id);
    expect(report).toMatchObject({ phase: 'closed', closedReason: 'finished' });

    const closed = await status(id);
    expect(closed).toMatchObject({ status: 200, body: { phase: 'closed', closedReason: 'finished' } });
    const late = await call('POST', '/v1/syncs/{id}/resubmit', {
      params: { id },
      body: { items: [{ fixes: 't2', target: { url: alpha[8]!.url } }] },
    });
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'sync_closed' } } });
    const again = await call('POST', '/v1/syncs/{id}/finish', { params: { id } });
    expect(again).toMatchObject({ status: 409, body: { error: { code: 'sync_closed' } } });
  });

  it('answers 404 for a sync that does not exist, and for an id that is not a sync', async () => {
    for (const id of [syncWorkflowId('octogen', uniqueKey('never')), 'someone-elses-workflow']) {
      const get = await status(id);
      expect(get).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      expect((get.body as { error: { message: string } }).error.message).toContain(id);
      const resubmit = await call('POST', '/v1/syncs/{id}/resubmit', {
        params: { id },
        body: { items: [{ target: { url: alpha[9]!.url } }] },
      });
      expect(resubmit).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      const finish = await call('POST', '/v1/syncs/{id}/finish', { params: { id } });
      expect(finish).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    }
  });

  it('answers 404 for a slice of a large sync: only the sync itself is a sync', async () => {
    const key = uniqueKey('http-slices');
    const id = syncWorkflowId('octogen', key);
    const targets = Array.from({ length: 20 }, (_, i) => ({ url: `${missingUrl}-${i}` }));
    await submit({ provider: 'octogen', key, targets, options: { sliceSize: 10, resubmissionWindow: '10m' } });
    await statusUntil(id, (r) => r.firstPassSettled);
    const slice = `${id}/slice-0`;
    expect(await exists(slice)).toBe(true);
    expect(await status(slice)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    const finishing = await call('POST', '/v1/syncs/{id}/finish', { params: { id: slice } });
    expect(finishing).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    await call('POST', '/v1/syncs/{id}/finish', { params: { id } });
  });
});

describe('GET /v1/syncs/{id} names the items', () => {
  it('names item_id:locale of an Insider warning and rejection, and uuid or url of an Octogen rejection with its line', async () => {
    const key = uniqueKey('http-items');
    const items = makeInsiderItems(5);
    const itemOf = (k: string) => ({ item_id: k.split(':')[0], locale: k.split(':')[1] });
    const answer = await submit({
      provider: 'insider',
      key,
      targets: [
        { ...itemOf(items[0]!), in_stock: 1 },
        { ...itemOf(items[1]!), product_attributes: { fabric: 'linen' } },
        { item_id: 'no-such-sku', locale: 'en_US', in_stock: 1 },
      ],
      options: { resubmissionWindow: '0s' },
    });
    expect(answer.status).toBe(202);
    const insider = await statusUntil(syncWorkflowId('insider', key), (r) => r.phase === 'closed');
    expect(insider.warnings).toEqual([{ id: 't1', identity: items[1], message: expect.stringContaining('(fabric)') }]);
    expect(insider.rejected).toEqual([
      expect.objectContaining({ id: 't2', identity: 'no-such-sku:en_US', code: 'item_not_found' }),
    ]);

    const url = host.put(
      `catalogs/${uniqueKey('items')}.ndjson`,
      `${JSON.stringify({ uuid: alpha[12]!.uuid })}\n${JSON.stringify({ url: missingUrl })}\n`,
    );
    const refKey = uniqueKey('http-items-ref');
    expect((await submit({ provider: 'octogen', key: refKey, targetsRef: { url } })).status).toBe(202);
    const octogen = await statusUntil(syncWorkflowId('octogen', refKey), (r) => r.firstPassSettled);
    expect(octogen.rejected).toEqual([
      expect.objectContaining({ id: 't1', identity: `url:${missingUrl}`, line: 2, code: 'product_not_found' }),
    ]);
    await call('POST', '/v1/syncs/{id}/finish', { params: { id: syncWorkflowId('octogen', refKey) } });
  });
});

describe('bearer tokens', () => {
  it('answers 401 without a token, with a wrong one, or with another scheme, and never echoes the token', async () => {
    const id = syncWorkflowId('octogen', 'whatever');
    const body = { provider: 'octogen', targets: [{ uuid: alpha[10]!.uuid }] };
    const answers = [
      await submit(body, null),
      await submit(body, 'wrong-token'),
      await submit(body, `${TOKEN}x`),
      await call('GET', '/v1/syncs/{id}', { params: { id }, token: null }),
      await call('GET', '/v1/syncs/{id}', {
        params: { id },
        token: null,
        headers: { authorization: `Basic ${TOKEN}` },
      }),
      await call('POST', '/v1/syncs/{id}/finish', { params: { id }, token: 'wrong-token' }),
      await call('POST', '/v1/syncs/{id}/resubmit', { params: { id }, token: null, body: { items: [] } }),
    ];
    for (const answer of answers) {
      expect(answer).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } });
      expect(answer.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.stringify(answer.body)).not.toContain('token-');
    }
  });

  it('keeps a scoped caller to its own syncs, and its keys to itself', async () => {
    const key = `scoped-${Date.now()}`;
    const body = { provider: 'octogen', key, targets: [{ url: missingUrl }] };
    const mine = await submit(body, SHOP_A);
    expect(mine.status).toBe(202);
    const id = (mine.body as { workflowId: string }).workflowId;
    expect(id).toBe(`catalog-sync-octogen-shop-a.${key}`);
    // The same key from another caller is another sync.
    const theirs = await submit(body, SHOP_B);
    expect((theirs.body as { workflowId: string }).workflowId).toBe(`catalog-sync-octogen-shop-b.${key}`);

    const asB = { params: { id }, token: SHOP_B };
    expect((await call('GET', '/v1/syncs/{id}', asB)).status).toBe(404);
    expect((await call('POST', '/v1/syncs/{id}/finish', asB)).status).toBe(404);
    expect(
      (
        await call('POST', '/v1/syncs/{id}/resubmit', {
          ...asB,
          body: { items: [{ fixes: 't0', target: { uuid: alpha[0]!.uuid } }] },
        })
      ).status,
    ).toBe(404);
    expect((await call('GET', '/v1/syncs/{id}', { params: { id }, token: SHOP_A })).status).toBe(200);
    // An operator's (unscoped) token sees every sync.
    expect((await call('GET', '/v1/syncs/{id}', { params: { id } })).status).toBe(200);
    for (const sync of [id, (theirs.body as { workflowId: string }).workflowId]) {
      await call('POST', '/v1/syncs/{id}/finish', { params: { id: sync } });
    }
  });

  it('compares tokens by value, whatever their lengths', () => {
    const ok = tokenChecker(['a', 'longer-token']);
    expect([ok('a'), ok('longer-token'), ok('b'), ok(''), ok('longer-token ')]).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
