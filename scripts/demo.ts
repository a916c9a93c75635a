/**
 * `npm run demo`: the product's main job on the embedded default. Starts (or reuses) a local
 * Temporal dev server, the provider simulators and a worker; submits a sample sync with accepted,
 * rejected and malformed targets; re-submits corrections; prints the reports and the Temporal UI
 * link; stops what it started. `--keep` leaves everything running until Ctrl-C, to browse the UI.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { awaitFirstPass, awaitReport, finish, resubmit, startSync } from '../client/sync-client.ts';
import { workflowUiLink } from '../client/connection.ts';
import { formatReport, formatResubmission } from '../client/format.ts';
import { readTargetsFile } from '../client/targets-file.ts';
import type { ResubmissionItem } from '../contracts/index.ts';
import { DEMO_OCTOGEN_KEY, demoOctogenIndex, startOctogenSimulator } from '../simulators/octogen.ts';
import { createSyncWorker } from '../worker/worker.ts';
import { startDevServer, type DevServer } from './dev-server.ts';
import { projectRoot } from './temporal-bin.ts';

const say = (s = '') => process.stdout.write(`${s}\n`);
const keep = process.argv.includes('--keep');

const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

async function temporal(): Promise<{ address: string; namespace: string; uiUrl: string; server?: DevServer }> {
  if (process.env.TEMPORAL_ADDRESS) {
    return {
      address: process.env.TEMPORAL_ADDRESS,
      namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
      uiUrl: process.env.TEMPORAL_UI_URL ?? 'http://localhost:8233',
    };
  }
  // The usual ports when free, so the UI link is the familiar one; any free ports otherwise.
  const usual = (await portFree(7233)) && (await portFree(8233));
  const server = await startDevServer({ ...(usual ? { port: 7233, uiPort: 8233 } : {}), log: 'quiet' });
  return { address: server.address, namespace: server.namespace, uiUrl: server.uiUrl ?? '', server };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stops: (() => Promise<void>)[] = [];
  try {
    say('catalog-sync demo: starting a Temporal dev server, the Octogen simulator and a worker...');
    const t = await temporal();
    if (t.server) stops.push(() => t.server!.stop());
    const sim = await startOctogenSimulator(demoOctogenIndex());
    stops.push(() => sim.close());

    const taskQueue = `catalog-sync-demo-${randomUUID().slice(0, 8)}`;
    const nativeConnection = await NativeConnection.connect({ address: t.address });
    const worker = await createSyncWorker({
      connection: nativeConnection,
      namespace: t.namespace,
      taskQueue,
      activityDeps: { env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: DEMO_OCTOGEN_KEY } },
    });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
      await nativeConnection.close();
    });
    const connection = await Connection.connect({ address: t.address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: t.namespace });
    const settings = { uiUrl: t.uiUrl, namespace: t.namespace };
    say(`  Temporal ${t.address} (UI ${t.uiUrl}), Octogen simulator ${sim.url}, task queue ${taskQueue}`);

    const examples = path.join(projectRoot(), 'examples');
    const targets = await readTargetsFile(path.join(examples, 'octogen-targets.ndjson'));
    say(`\n1. submit ${targets.length} Octogen targets (examples/octogen-targets.ndjson), one of them malformed`);
    const { workflowId } = await startSync(
      client,
      { provider: 'octogen', key: `demo-${randomUUID().slice(0, 8)}`, targets: targets.map((x) => x.value) },
      taskQueue,
    );
    const first = await awaitFirstPass(client, workflowId);
    say(formatReport(workflowId, first.report, workflowUiLink(settings, workflowId)));

    const fixes = (await readTargetsFile(path.join(examples, 'octogen-fixes.json'))).map((x) => x.value);
    say(`\n2. re-submit corrections for the ambiguous URL and the malformed target (examples/octogen-fixes.json)`);
    say(formatResubmission(await resubmit(client, workflowId, fixes as ResubmissionItem[])));

    say(`\n3. the sync stays open while anything is left to fix; the final report:`);
    const rest = first.report.rejected.filter((r) => !['t5', 't7'].includes(r.id));
    if (rest.length > 0) {
      say(`   (${rest.map((r) => `${r.id} ${r.code}`).join(', ')} cannot be fixed here: finishing the sync)`);
      await finish(client, workflowId);
    }
    const final = await awaitReport(client, workflowId);
    say(formatReport(workflowId, final.report, workflowUiLink(settings, workflowId)));
    const c = final.report.counts;
    say(
      `\n   every target in exactly one state: ${c.submitted} = ${c.accepted} + ${c.rejected} + ${c.failed} + ${c.superseded}`,
    );
    say(`   Octogen simulator received ${sim.requests.length} calls`);

    if (keep) {
      say(`\nStill running (--keep): open ${workflowUiLink(settings, workflowId)}; Ctrl-C to stop.`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`catalog-sync demo: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
