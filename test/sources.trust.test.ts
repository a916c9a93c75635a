/**
 * The trust boundary for sources and the private, temporary spool, against the real dev server,
 * a real worker, the Octogen simulator, the NDJSON host and the real HTTP front: what an HTTP
 * caller may name, what a worker reads, what a report shows of a source line, and where large
 * requests wait on disk and for how long.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isInternalAddress, judgeSourceUrl } from '../activities/source-policy.ts';
import { runningWorkflowIds } from '../activities/spool-sweeper.ts';
import { spoolFileName, sweepSpool, writeSpool } from '../activities/spool.ts';
import { startHttpFront, type RunningHttpFront } from '../http/http-front.ts';
import { awaitReport, startSync, syncWorkflowId, type SyncOutcome } from '../client/index.ts';
import { countsAddUp, type SyncRequest } from '../contracts/index.ts';
import { startNdjsonHost, type NdjsonHost } from '../simulators/ndjson-host.ts';
import { makeOctogenProducts } from '../simulators/octogen-index.ts';
import { startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, uniqueKey, uniqueTaskQueue, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'sources-octogen-key';
const TOKEN = 'sources-token';
const products = makeOctogenProducts('alpha', 6000);
const CODEC_KEYS = `s1:${randomBytes(32).toString('base64')}`;

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let host: NdjsonHost;
let dir: string;
let spool: string;
const saved = { ...process.env };

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-sources-'));
  spool = path.join(dir, 'spool');
  // The library (startSync) spools with the process's environment, as a caller's service would.
  process.env.CATALOG_SYNC_SPOOL_DIR = spool;
  t = await connectTestEnv();
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
  host = await startNdjsonHost();
});
afterEach(() => {
  for (const k of ['CATALOG_SYNC_SOURCE_URLS', 'CATALOG_SYNC_CODEC_KEYS']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});
afterAll(async () => {
  process.env.CATALOG_SYNC_SPOOL_DIR = saved.CATALOG_SYNC_SPOOL_DIR;
  if (saved.CATALOG_SYNC_SPOOL_DIR === undefined) delete process.env.CATALOG_SYNC_SPOOL_DIR;
  await host?.close();
  await sim?.close();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const workerEnv = (extra: Record<string, string> = {}) => ({
  OCTOGEN_BASE_URL: sim.url,
  OCTOGEN_PLATFORM_API_KEY: KEY,
  CATALOG_SYNC_SPOOL_DIR: spool,
  ...extra,
});

/** Every workflow ever started on a task queue (the visibility store, polled until it settles). */
async function workflowsOn(taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of t.client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) ids.push(wf.workflowId);
  return ids;
}

async function runSync(req: SyncRequest, env: Record<string, string>): Promise<SyncOutcome & { workflowId: string }> {
  return withWorker(t, { env }, async (taskQueue) => {
    const { workflowId } = await startSync(t.client, req, taskQueue);
    return { workflowId, ...(await awaitReport(t.client, workflowId)) };
  });
}

describe('the HTTP front: a caller names no file and no URL off the allowlist', () => {
  let front: RunningHttpFront;
  const taskQueue = uniqueTaskQueue('sources-front');

  beforeAll(async () => {
    front = await startHttpFront({ client: t.client, taskQueue, tokens: [TOKEN], port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await front?.close();
  });

  const submit = async (body: unknown) => {
    const res = await request(`${front.url}/v1/syncs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as { error?: { code: string; message: string } } };
  };

  it('refuses a file, an unlisted host, a loopback URL and a listed name that resolves to loopback: 400, nothing read or started', async () => {
    const secret = path.join(dir, 'secrets.ndjson');
    await writeFile(secret, '{"uuid":"not-a-uuid","password":"hunter2"}\n');
    const doc = host.put('listed.ndjson', `${JSON.stringify({ uuid: products[0]!.uuid })}\n`);
    const port = new URL(host.url).port;
    process.env.CATALOG_SYNC_SOURCE_URLS = `https://files.example.com/catalogs/,http://localhost:${port}/`;
    const before = host.requests.length;

    const file = await submit({ provider: 'octogen', targetsRef: { file: secret } });
    expect(file.status).toBe(400);
    expect(file.body.error?.message).toMatch(
      /^targetsRef\.file: an HTTP caller cannot name a file.*send the targets inline/,
    );
    expect(file.body.error?.message).toContain('CATALOG_SYNC_SOURCE_URLS');

    const loopback = await submit({ provider: 'octogen', targetsRef: { url: doc } });
    expect(loopback.status).toBe(400);
    expect(loopback.body.error?.message).toMatch(
      /^targetsRef\.url .* is not on the operator's allowlist \(CATALOG_SYNC_SOURCE_URLS/,
    );

    const unlisted = await submit({
      provider: 'octogen',
      targetsRef: { url: 'https://elsewhere.example.org/catalogs/a.ndjson' },
    });
    expect(unlisted.status).toBe(400);
    expect(unlisted.body.error?.message).toMatch(/not on the operator's allowlist/);
    // A prefix is a path prefix on the same origin, not a string prefix of the host.
    const lookalike = await submit({
      provider: 'octogen',
      targetsRef: { url: 'https://files.example.com.evil.net/catalogs/a.ndjson' },
    });
    expect(lookalike.status).toBe(400);

    const byName = await submit({ provider: 'octogen', targetsRef: { url: `http://localhost:${port}/listed.ndjson` } });
    expect(byName.status).toBe(400);
    expect(byName.body.error?.message).toMatch(/internal address (127\.0\.0\.1|::1).*names that host itself/);

    expect(host.requests.length).toBe(before);
    expect(await workflowsOn(taskQueue)).toEqual([]);
  });

  it('starts a sync from a URL under a listed prefix', async () => {
    const doc = host.put('front-ok.ndjson', `${JSON.stringify({ uuid: products[1]!.uuid })}\n{"uuid":"nope"}\n`);
    process.env.CATALOG_SYNC_SOURCE_URLS = `${host.url}/`;
    const key = uniqueKey('front-url');
    const answer = await submit({
      provider: 'octogen',
      key,
      targetsRef: { url: doc },
      options: { resubmissionWindow: '0s' },
    });
    expect(answer.status).toBe(202);
    const { report } = await withWorker(
      t,
      { env: workerEnv({ CATALOG_SYNC_SOURCE_URLS: `${host.url}/` }), taskQueue },
      () => awaitReport(t.client, syncWorkflowId('octogen', key)),
    );
    expect(report.counts).toMatchObject({ submitted: 2, accepted: 1, rejected: 1 });
    expect(host.requests.some((r) => r.path === '/front-ok.ndjson')).toBe(true);
  });
});

describe('which addresses and URLs count as allowed', () => {
  it('treats loopback, link-local, private and reserved addresses as internal, in every IPv4 and IPv6 spelling', () => {
    const internal = [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'fc12::3',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      '2002:7f00:1::',
      '[::1]',
      'fe80::1%eth0',
      'not-an-address',
    ];
    const external = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2002:808:808::'];
    expect(internal.filter((ip) => !isInternalAddress(ip))).toEqual([]);
    expect(external.filter((ip) => isInternalAddress(ip))).toEqual([]);
  });

  it('matches a prefix by scheme, host, port and path segments, and lets an IP-literal prefix name an internal host', () => {
    const env = { CATALOG_SYNC_SOURCE_URLS: 'https://files.example.com/catalogs, http://10.0.0.5:8080/' };
    const allowed = (url: string) => judgeSourceUrl(url, env).refused === undefined;
    expect(allowed('https://files.example.com/catalogs/a.ndjson')).toBe(true);
    expect(allowed('https://files.example.com/catalogs')).toBe(true);
    expect(allowed('https://FILES.example.com/catalogs/sub/b.ndjson?v=1')).toBe(true);
    expect(allowed('http://10.0.0.5:8080/x.ndjson')).toBe(true);
    for (const url of [
      'https://files.example.com/catalogs-private/a.ndjson',
      'https://files.example.com/catalogs/../secrets.ndjson',
      'https://files.example.com/catalogs/%2e%2e/secrets.ndjson',
      'http://files.example.com/catalogs/a.ndjson',
      'https://files.example.com:8443/catalogs/a.ndjson',
      'https://files.example.com.evil.net/catalogs/a.ndjson',
      'https://user@evil.net/@files.example.com/catalogs/a.ndjson',
      'http://10.0.0.6:8080/x.ndjson',
      'file:///etc/passwd',
    ]) {
      expect(allowed(url), url).toBe(false);
    }
    expect(judgeSourceUrl('https://x.example/a', {}).refused).toMatch(/CATALOG_SYNC_SOURCE_URLS is not set/);
  });
});

describe('the worker reads only allowed URLs, whoever started the sync', () => {
  it('ends a sync whose URL is not on its allowlist with a reason naming CATALOG_SYNC_SOURCE_URLS, reading nothing', async () => {
    const doc = host.put('worker-refused.ndjson', `${JSON.stringify({ uuid: products[2]!.uuid })}\n`);
    const before = host.requests.length;
    const outcome = await runSync(
      { provider: 'octogen', targetsRef: { url: doc }, options: { resubmissionWindow: '0s' } },
      workerEnv({ CATALOG_SYNC_SOURCE_URLS: 'https://files.example.com/' }),
    );
    expect(outcome.abortReason).toMatch(/refuses to read targetsRef\.url .*CATALOG_SYNC_SOURCE_URLS/);
    expect(outcome.abortReason).not.toContain('\n');
    expect(host.requests.length).toBe(before);
  });

  it('refuses at connect time a listed name that resolves to a loopback address', async () => {
    host.put('by-name.ndjson', `${JSON.stringify({ uuid: products[3]!.uuid })}\n`);
    const port = new URL(host.url).port;
    const before = host.requests.length;
    const outcome = await runSync(
      {
        provider: 'octogen',
        targetsRef: { url: `http://localhost:${port}/by-name.ndjson` },
        options: { resubmissionWindow: '0s' },
      },
      workerEnv({ CATALOG_SYNC_SOURCE_URLS: `http://localhost:${port}/` }),
    );
    expect(outcome.abortReason).toMatch(/resolves to the internal address .*CATALOG_SYNC_SOURCE_URLS/);
    expect(host.requests.length).toBe(before);
  });
});

describe('a report shows only the target fields of a source line, cut short', () => {
  it('echoes known fields only, and nothing of a line that is not JSON or not an object', async () => {
    const file = path.join(dir, 'mixed.ndjson');
    const long = `https://alpha.com/products/${'x'.repeat(500)}`;
    await writeFile(
      file,
      [
        JSON.stringify({ uuid: products[4]!.uuid }),
        JSON.stringify({ uuid: 'not-a-uuid', password: 'hunter2', aws_secret_access_key: 'AKIASECRETVALUE' }),
        'root:x:0:0:root:/root:/bin/bash',
        '"sk_live_51HSecretToken"',
        JSON.stringify({ url: long, uuid: products[5]!.uuid }),
        '',
      ].join('\n'),
    );
    const { report } = await runSync(
      { provider: 'octogen', targetsRef: { file }, options: { resubmissionWindow: '0s' } },
      workerEnv(),
    );
    expect(countsAddUp(report.counts)).toBe(true);
    expect(report.counts).toMatchObject({ submitted: 5, accepted: 1, rejected: 4 });
    const byLine = new Map(report.rejected.map((r) => [r.line, r]));
    expect(byLine.get(2)?.target).toEqual({ uuid: 'not-a-uuid' });
    expect(byLine.get(3)).toMatchObject({
      code: 'invalid_json',
      message: 'line 3 is not JSON; write one JSON target a line',
    });
    expect(byLine.get(3)?.target).toBeUndefined();
    expect(byLine.get(4)?.target).toBeUndefined();
    expect((byLine.get(5)?.target as { url: string }).url).toBe(long.slice(0, 200));
    const shown = JSON.stringify(report);
    for (const secret of ['hunter2', 'AKIASECRETVALUE', 'root:x', '/bin/bash', 'sk_live'])
      expect(shown).not.toContain(secret);
  });
});

describe('the spool: private, sealed with the codec key, gone when its sync closes', () => {
  const big = products.map((p) => ({ uuid: p.uuid })); // ~290 KB of JSON: over the 256 KB inline limit

  it('writes a 0600 file in a 0700 folder, sealed when a codec key is set, and deletes it when the sync closes', async () => {
    process.env.CATALOG_SYNC_CODEC_KEYS = CODEC_KEYS;
    const taskQueue = uniqueTaskQueue('sources-spool');
    // Started with no worker yet: the spooled file waits for it.
    const { workflowId } = await startSync(
      t.client,
      { provider: 'octogen', targets: big, options: { resubmissionWindow: '0s' } },
      taskQueue,
    );
    const files = (await readdir(spool)).filter((f) => f.endsWith('.ndjson'));
    expect(files).toHaveLength(1);
    const file = path.join(spool, files[0]!);
    expect((await stat(spool)).mode & 0o777).toBe(0o700);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(products[0]!.uuid);
    expect(text.split('\n').filter(Boolean)).toHaveLength(big.length);

    const { report } = await withWorker(t, { env: workerEnv({ CATALOG_SYNC_CODEC_KEYS: CODEC_KEYS }), taskQueue }, () =>
      awaitReport(t.client, workflowId),
    );
    expect(report.counts).toMatchObject({ submitted: big.length, accepted: big.length });
    expect(await readdir(spool)).not.toContain(files[0]);
  });

  it('ends a sync whose worker lacks the key its spool was sealed with, naming CATALOG_SYNC_CODEC_KEYS', async () => {
    process.env.CATALOG_SYNC_CODEC_KEYS = CODEC_KEYS;
    const outcome = await runSync(
      { provider: 'octogen', targets: big, options: { resubmissionWindow: '0s' } },
      workerEnv(),
    );
    expect(outcome.abortReason).toMatch(/sealed with codec key "s1".*add it to CATALOG_SYNC_CODEC_KEYS/);
    expect(countsAddUp(outcome.report.counts)).toBe(true);
    expect((await readdir(spool)).filter((f) => f.endsWith('.ndjson'))).toEqual([]);
  });

  it('deletes the spooled file when the sync aborts', async () => {
    const outcome = await runSync(
      { provider: 'octogen', targets: big, options: { resubmissionWindow: '0s' } },
      workerEnv({ OCTOGEN_PLATFORM_API_KEY: 'not-a-key' }),
    );
    expect(outcome.abortReason).toBeDefined();
    expect((await readdir(spool)).filter((f) => f.endsWith('.ndjson'))).toEqual([]);
  });

  it('tightens a spool folder of its own that others could read', async () => {
    const loose = path.join(dir, 'loose');
    await mkdir(loose, { mode: 0o755 });
    await chmod(loose, 0o755);
    const ref = await writeSpool('wf', [{ uuid: products[0]!.uuid }], { CATALOG_SYNC_SPOOL_DIR: loose });
    expect((await stat(loose)).mode & 0o777).toBe(0o700);
    expect('file' in ref && (await stat(ref.file)).mode & 0o777).toBe(0o600);
  });

  it('sweeps old files of closed syncs, and keeps an open sync\u2019s file and recent files', async () => {
    const sweepDir = path.join(dir, 'sweep');
    const env = { CATALOG_SYNC_SPOOL_DIR: sweepDir, CATALOG_SYNC_SPOOL_RETENTION: '1h' };
    // An open sync: started on a task queue no worker polls, so it stays running.
    const openId = syncWorkflowId('octogen', uniqueKey('sweep-open'));
    const open = await t.client.workflow.start('syncWorkflow', {
      taskQueue: uniqueTaskQueue('sweep-nobody'),
      workflowId: openId,
      args: [{ provider: 'octogen', source: { kind: 'inline', targets: [] } }],
    });
    try {
      const openFile = await writeSpool(openId, [{ uuid: products[0]!.uuid }], env);
      const closedFile = await writeSpool(syncWorkflowId('octogen', uniqueKey('sweep-gone')), [{}], env);
      const recentFile = await writeSpool(syncWorkflowId('octogen', uniqueKey('sweep-new')), [{}], env);
      const other = path.join(sweepDir, 'notes.txt');
      await writeFile(other, 'not a spool file');
      const old = new Date(Date.now() - 2 * 3_600_000);
      for (const ref of [openFile, closedFile]) if ('file' in ref) await utimes(ref.file, old, old);
      await utimes(other, old, old);
      // Visibility is eventually consistent: the open sync must be listed before the sweep asks.
      for (let i = 0; i < 50 && !(await runningWorkflowIds(t.client)).includes(openId); i += 1) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const result = await sweepSpool({ env, runningWorkflowIds: () => runningWorkflowIds(t.client) });
      const names = await readdir(sweepDir);
      const base = (ref: typeof openFile) => ('file' in ref ? path.basename(ref.file) : '');
      expect(names.sort()).toEqual([base(openFile), base(recentFile), 'notes.txt'].sort());
      expect(result.deleted.map((f) => path.basename(f))).toEqual([base(closedFile)]);
      expect(result.kept.map((f) => path.basename(f))).toEqual([base(openFile)]);

      // When Temporal cannot say what runs, nothing is deleted.
      const blind = await sweepSpool({
        env,
        runningWorkflowIds: () => Promise.reject(new Error('Temporal unreachable')),
      }).catch(() => undefined);
      expect(blind).toBeUndefined();
      expect((await readdir(sweepDir)).length).toBe(3);
      expect(spoolFileName(openId)).toMatch(/^catalog-sync-octogen-sweep-open-/);
    } finally {
      await open.terminate('test over');
    }
  });
});
