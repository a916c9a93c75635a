/**
 * The CLI as a user runs it: a real process, a real server, a real worker and the simulator.
 * Bad input gets one clear line, a non-zero exit, and no sync started.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { countsAddUp, type SyncReport } from '../contracts/index.ts';
import { makeInsiderItems, startInsiderSimulator, type InsiderSimulator } from '../simulators/insider.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { runCli } from './helpers/processes.ts';
import { connectTestEnv, makeWorker, uniqueKey, uniqueTaskQueue, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'cli-test-key';
const products = makeOctogenProducts('alpha', 6000);
const shared = { uuid: '55555555-5555-4555-8555-555555555555', url: 'https://shared.example/p', catalog: 'alpha' };
const sharedBeta = { uuid: '66666666-6666-4666-8666-666666666666', url: 'https://shared.example/p', catalog: 'beta' };

let t: TemporalTestEnv;
let sim: OctogenSimulator;
let insiderSim: InsiderSimulator;
let dir: string;
const taskQueue = uniqueTaskQueue('cli');
let stopWorker: () => Promise<void>;

const file = (name: string, content: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, content);
  return p;
};
const cliEnv = () => ({
  TEMPORAL_ADDRESS: inject('temporalAddress'),
  TEMPORAL_NAMESPACE: inject('temporalNamespace'),
  CATALOG_SYNC_TASK_QUEUE: taskQueue,
});

async function expectNoSync(key: string) {
  await expect(t.client.workflow.getHandle(`catalog-sync-octogen-${key}`).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'catalog-sync-cli-'));
  t = await connectTestEnv();
  sim = await startOctogenSimulator({
    keys: { [KEY]: ['alpha', 'beta'] },
    products: [...products, shared, sharedBeta],
  });
  insiderSim = await startInsiderSimulator({
    partnerName: 'cli-partner',
    token: 'cli-token',
    items: makeInsiderItems(5),
  });
  const worker = await makeWorker(t, {
    taskQueue,
    env: {
      OCTOGEN_BASE_URL: sim.url,
      OCTOGEN_PLATFORM_API_KEY: KEY,
      INSIDER_BASE_URL: insiderSim.url,
      INSIDER_PARTNER_NAME: 'cli-partner',
      INSIDER_REQUEST_TOKEN: 'cli-token',
    },
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
  };
});
afterAll(async () => {
  await stopWorker?.();
  await sim?.close();
  await insiderSim?.close();
  await t?.close();
});

describe('catalog-sync CLI', () => {
  it('submits, waits, prints JSON only, takes a re-submission and prints the final result', async () => {
    const key = uniqueKey('cli');
    const targets = file(
      'targets.ndjson',
      [{ uuid: products[0]!.uuid }, { url: shared.url }, { catalog: 'alpha', url: products[1]!.url }]
        .map((x) => JSON.stringify(x))
        .join('\n'),
    );
    const submitted = await runCli(
      ['submit', '--provider', 'octogen', '--targets', targets, '--key', key, '--window', '5m', '--wait', '--json'],
      cliEnv(),
    );
    expect(submitted.stderr).toBe('');
    expect(submitted.code).toBe(0);
    const report = JSON.parse(submitted.stdout) as SyncReport;
    expect(report).toMatchObject({ workflowId: `catalog-sync-octogen-${key}`, phase: 'open', firstPassSettled: true });
    expect(report.counts).toMatchObject({ submitted: 3, accepted: 2, rejected: 1 });
    expect(report.rejected[0]).toMatchObject({ id: 't1', code: 'ambiguous_url' });

    const status = await runCli(['status', report.workflowId], cliEnv());
    expect(status.code).toBe(0);
    // The rejection names the provider's identity of the item besides its target id.
    expect(status.stdout).toContain(`t1 url:${shared.url}  ambiguous_url`);
    expect(status.stdout).toContain('/workflows/catalog-sync-octogen-');

    const fix = file('fix.json', JSON.stringify([{ fixes: 't1', target: { catalog: 'beta', url: shared.url } }]));
    const resubmitted = await runCli(['resubmit', report.workflowId, '--targets', fix, '--json'], cliEnv());
    expect(resubmitted.code).toBe(0);
    expect(JSON.parse(resubmitted.stdout)).toEqual({ taken: [{ index: 0, id: 't3', supersedes: 't1' }], refused: [] });

    const result = await runCli(['result', report.workflowId, '--json'], cliEnv());
    expect(result.code).toBe(0);
    const final = JSON.parse(result.stdout) as SyncReport;
    expect(final).toMatchObject({ phase: 'closed', closedReason: 'nothing-to-fix' });
    expect(final.counts).toMatchObject({ submitted: 4, accepted: 3, superseded: 1, rejected: 0 });
    expect(countsAddUp(final.counts)).toBe(true);
  });

  it('submits an Insider sync the same way', async () => {
    const targets = file(
      'insider.json',
      JSON.stringify([
        { item_id: 'sku-00001', locale: 'en_US', in_stock: 1, price: { USD: 40.9 } },
        { item_id: 'sku-00002', locale: 'en_US', name: 'Blue shirt', product_attributes: { fabric: 'linen' } },
      ]),
    );
    const res = await runCli(['submit', '--provider', 'insider', '--targets', targets, '--wait', '--json'], cliEnv());
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout) as SyncReport;
    expect(report).toMatchObject({ provider: 'insider', phase: 'closed', closedReason: 'nothing-to-fix' });
    expect(report.counts).toMatchObject({ submitted: 2, accepted: 2 });
    expect(report.warnings).toEqual([
      { id: 't1', identity: 'sku-00002:en_US', message: expect.stringContaining('(fabric)') },
    ]);
    expect(insiderSim.requests).toHaveLength(1);
    // The CLI text names the item the warning concerns (item_id:locale), in `status` and `result`.
    for (const command of ['status', 'result']) {
      const text = await runCli([command, report.workflowId], cliEnv());
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(/warnings:\n\s+t1 sku-00002:en_US {2}.*\(fabric\)/);
    }
  });

  it('passes a large NDJSON file by reference, checking it line by line first', async () => {
    const lines = products.map((p) => JSON.stringify({ uuid: p.uuid }));
    lines[4321] = JSON.stringify({ uuid: 'not-a-uuid' });
    const big = file('big.ndjson', `${lines.join('\n')}\n`);
    const refused = await runCli(['submit', '--provider', 'octogen', '--targets', big], cliEnv());
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/big\.ndjson line 4322: uuid must be a UUID/);
    const res = await runCli(
      ['submit', '--provider', 'octogen', '--targets', big, '--allow-invalid', '--window', '0s', '--wait', '--json'],
      cliEnv(),
    );
    expect(res.stderr).toBe('');
    const report = JSON.parse(res.stdout) as SyncReport;
    expect(report.counts).toMatchObject({ submitted: 6000, accepted: 5999, rejected: 1 });
    expect(report.rejected[0]).toMatchObject({ id: 't4321', line: 4322, code: 'invalid_target' });
  });

  it('refuses a targets file that is not JSON', async () => {
    const key = uniqueKey('bad');
    const res = await runCli(
      ['submit', '--provider', 'octogen', '--targets', file('bad.json', '{"uuid": '), '--key', key],
      cliEnv(),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/bad\.json line 1 is not JSON/);
    await expectNoSync(key);
  });

  it('refuses a target with both url and uuid, naming its line, and starts nothing', async () => {
    const key = uniqueKey('both');
    const content = `${JSON.stringify({ uuid: products[0]!.uuid })}\n${JSON.stringify({ uuid: products[1]!.uuid, url: products[1]!.url })}\n`;
    const res = await runCli(
      ['submit', '--provider', 'octogen', '--targets', file('both.ndjson', content), '--key', key],
      cliEnv(),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/both\.ndjson line 2: target has both url and uuid; send exactly one/);
    await expectNoSync(key);
  });

  it('refuses an unknown provider, naming the known ones', async () => {
    const key = uniqueKey('prov');
    const res = await runCli(
      ['submit', '--provider', 'acme', '--targets', file('ok.json', '[]'), '--key', key],
      cliEnv(),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/acme.*octogen/);
    await expectNoSync(key);
  });

  it('refuses to run a worker without the API key, naming the variable', async () => {
    const res = await runCli(['worker'], cliEnv());
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/OCTOGEN_PLATFORM_API_KEY/);
  });

  it('says how to fix an unreachable Temporal server', async () => {
    const res = await runCli(
      ['submit', '--provider', 'octogen', '--targets', file('one.json', JSON.stringify([{ uuid: products[0]!.uuid }]))],
      { ...cliEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' },
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/cannot reach the Temporal server at 127\.0\.0\.1:1.*TEMPORAL_ADDRESS/);
  });
});
