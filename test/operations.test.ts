/**
 * The Temporal UI as the operator's console, checked through the real server: typed search
 * attributes to filter syncs, a static summary, activity summaries and current details.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awaitFirstPass, awaitReport, finish, startSync } from '../client/index.ts';
import { SA_PHASE, SA_REJECTED } from '../contracts/index.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { connectTestEnv, uniqueKey, withWorker, type TemporalTestEnv } from './helpers/temporal.ts';

const KEY = 'ops-test-key';
const products = makeOctogenProducts('alpha', 5);
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

/** Visibility is eventually consistent: ask until the answer holds or time runs out. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const ids = async (query: string) => {
  const out: string[] = [];
  for await (const w of t.client.workflow.list({ query })) out.push(w.workflowId);
  return out;
};

it('lets an operator find running syncs with rejections, and read what each waits for', async () => {
  const key = uniqueKey('ops');
  await withWorker(t, { env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY } }, async (taskQueue) => {
    const { workflowId } = await startSync(
      t.client,
      {
        provider: 'octogen',
        key,
        targets: [{ uuid: products[0]!.uuid }, { url: 'https://alpha.com/products/missing' }],
      },
      taskQueue,
    );
    await awaitFirstPass(t.client, workflowId);
    const query = `CatalogSyncProvider = 'octogen' AND CatalogSyncRejected > 0 AND ExecutionStatus = 'Running'`;
    const found = await eventually(
      () => ids(query),
      (list) => list.includes(workflowId),
    );
    expect(found).toContain(workflowId);

    const handle = t.client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    expect(await description.staticSummary()).toBe(`octogen sync of 2 targets (key ${key})`);
    expect(description.typedSearchAttributes.get(SA_PHASE)).toBe('open');
    expect(description.typedSearchAttributes.get(SA_REJECTED)).toBe(1);
    // The UI reads current details through the SDK's built-in metadata query.
    const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    expect(metadata.currentDetails).toMatch(/^open for re-submission until .*: 1 rejected and 0 failed to fix$/);
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
    const summaries = await Promise.all(
      scheduled.map(async (e) =>
        e.userMetadata?.summary
          ? t.client.options.loadedDataConverter.payloadConverter.fromPayload(e.userMetadata.summary)
          : undefined,
      ),
    );
    expect(summaries).toContain('octogen batch 1/1, 2 targets');

    await finish(t.client, workflowId);
    await awaitReport(t.client, workflowId);
    const closed = await eventually(
      () => ids(`WorkflowId = '${workflowId}' AND CatalogSyncPhase = 'closed'`),
      (list) => list.length === 1,
    );
    expect(closed).toEqual([workflowId]);
  });
});
