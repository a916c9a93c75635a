/**
 * `npm run record-histories`: runs a few representative syncs (re-submission by signal and
 * update, an abort, fan-out across continue-as-new, an Insider split) on a fresh dev server and
 * saves every run's history under test/histories/ (binary protobuf). test/replay.test.ts replays them against the
 * current workflow code, so a change that would break running syncs fails CI: record again only
 * when such a change is patched (workflow.patched) or deliberately incompatible.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { awaitFirstPass, awaitReport, resubmit, resubmitBySignal, startSync } from '../client/sync-client.ts';
import { startInsiderSimulator, makeInsiderItems } from '../simulators/insider.ts';
import { makeOctogenProducts, startOctogenSimulator } from '../simulators/octogen.ts';
import { createSyncWorker } from '../worker/worker.ts';
import { startDevServer } from './dev-server.ts';
import { projectRoot } from './temporal-bin.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });
const out = path.join(projectRoot(), 'test', 'histories');
mkdirSync(out, { recursive: true });

const server = await startDevServer({ headless: true, log: 'quiet' });
const products = makeOctogenProducts('alpha', 400);
const shared = { uuid: '99999999-9999-4999-8999-999999999999', url: 'https://shared.example/r/1', catalog: 'alpha' };
const octogen = await startOctogenSimulator({
  keys: { key: ['alpha', 'beta'] },
  products: [...products, shared, { ...shared, uuid: '99999999-9999-4999-8999-999999999998', catalog: 'beta' }],
});
const items = makeInsiderItems(300);
const insider = await startInsiderSimulator({
  partnerName: 'p',
  token: 't',
  items,
  requestsPerMinute: Infinity,
  maxRequestBytes: 60_000,
});
const connection = await Connection.connect({ address: server.address });
const client = new Client({ connection, namespace: server.namespace });
const native = await NativeConnection.connect({ address: server.address });
const taskQueue = 'record-histories';
const env = (extra: Record<string, string> = {}) => ({
  OCTOGEN_BASE_URL: octogen.url,
  OCTOGEN_PLATFORM_API_KEY: 'key',
  INSIDER_BASE_URL: insider.url,
  INSIDER_PARTNER_NAME: 'p',
  INSIDER_REQUEST_TOKEN: 't',
  INSIDER_REQUESTS_PER_MINUTE: '6000',
  ...extra,
});

const index: Record<string, string> = {};
async function save(name: string, workflowId: string): Promise<void> {
  let n = 0;
  for await (const run of client.workflow.list({
    query: `WorkflowId = '${workflowId}' OR WorkflowId STARTS_WITH '${workflowId}/'`,
  })) {
    const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    // Binary protobuf: exact, compact, and what Temporal's own tools read and write.
    writeFileSync(path.join(out, `${name}-${n}.binpb`), proto.temporal.api.history.v1.History.encode(history).finish());
    index[`${name}-${n}.binpb`] = run.workflowId;
    n += 1;
  }
  process.stderr.write(`record-histories: ${name}: ${n} run(s)\n`);
}

async function withWorker<T>(workerEnv: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const worker = await createSyncWorker({
    connection: native,
    namespace: server.namespace,
    taskQueue,
    activityDeps: { env: workerEnv },
  });
  return worker.runUntil(fn());
}

try {
  await withWorker(env(), async () => {
    const { workflowId } = await startSync(
      client,
      {
        provider: 'octogen',
        key: 'resubmissions',
        // One update per product a sync: the ambiguous URL once (both catalogs hold it).
        targets: [{ url: shared.url }, { uuid: products[0]!.uuid }, { uuid: 'bad' }],
      },
      taskQueue,
    );
    await awaitFirstPass(client, workflowId);
    await resubmit(client, workflowId, [
      { fixes: 't0', target: { catalog: 'alpha', url: shared.url } },
      { fixes: 't2', target: { uuid: 'still bad' } },
    ]);
    await resubmitBySignal(client, workflowId, [
      { target: { catalog: 'beta', url: shared.url } },
      { fixes: 't2', target: { uuid: products[1]!.uuid } },
    ]);
    await awaitReport(client, workflowId);
    await save('octogen-resubmissions', workflowId);

    const fanout = await startSync(
      client,
      {
        provider: 'octogen',
        key: 'fan-out',
        targets: products.map((p) => ({ uuid: p.uuid })),
        options: { sliceSize: 50, slicesPerRun: 3, batchSize: 20, resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    await awaitReport(client, fanout.workflowId);
    await save('octogen-fan-out', fanout.workflowId);

    // By reference: lanes, fan-out over two runs, a malformed line and a product the provider lacks.
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'record-histories-')), 'catalog.ndjson');
    const lines = products.map((p) => JSON.stringify({ uuid: p.uuid }));
    lines[7] = '{not json';
    lines[123] = JSON.stringify({ uuid: '00000000-0000-4000-8000-000000000000' });
    writeFileSync(file, `${lines.join('\n')}\n`);
    const lanes = await startSync(
      client,
      {
        provider: 'octogen',
        key: 'lanes',
        targetsRef: { file },
        options: { sliceSize: 100, slicesPerRun: 2, batchSize: 20, concurrency: 2, resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    await awaitReport(client, lanes.workflowId);
    await save('octogen-lanes', lanes.workflowId);

    const split = await startSync(
      client,
      {
        provider: 'insider',
        key: 'split',
        targets: items.map((k) => ({ item_id: k.split(':')[0], locale: 'en_US', description: 'x'.repeat(300) })),
        options: { resubmissionWindow: '0s' },
      },
      taskQueue,
    );
    await awaitReport(client, split.workflowId);
    await save('insider-split', split.workflowId);
  });
  await withWorker(env({ OCTOGEN_PLATFORM_API_KEY: 'wrong' }), async () => {
    const { workflowId } = await startSync(
      client,
      { provider: 'octogen', key: 'abort', targets: [{ uuid: products[2]!.uuid }] },
      taskQueue,
    );
    await awaitReport(client, workflowId);
    await save('octogen-abort', workflowId);
  });
  // Replay needs each history's workflow ID (child workflow IDs derive from it).
  writeFileSync(path.join(out, 'workflow-ids.json'), `${JSON.stringify(index, null, 2)}\n`);
} finally {
  await native.close();
  await connection.close();
  await octogen.close();
  await insider.close();
  await server.stop();
}
