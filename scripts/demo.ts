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
import { NativeConnection, Runtime } from '@temporalio/worker';
import { consoleLogger } from '../worker/telemetry.ts';
import { awaitFirstPass, awaitReport, finish, getStatus, resubmit, startSync } from '../client/sync-client.ts';
import { workflowUiLink } from '../temporal/connection.ts';
import { formatReport, formatResubmission } from '../cli/format.ts';
import { readTargetsFile } from '../cli/targets-file.ts';
import type { ResubmissionItem } from '../contracts/index.ts';
import {
  DEMO_INSIDER_PARTNER,
  DEMO_INSIDER_TOKEN,
  demoInsiderCatalog,
  startInsiderSimulator,
} from '../simulators/insider.ts';
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
  Runtime.install({ logger: consoleLogger('WARN') });
  const stops: (() => Promise<void>)[] = [];
  try {
    say('catalog-sync demo: starting a Temporal dev server, the Octogen and Insider simulators and a worker...');
    const t = await temporal();
    if (t.server) stops.push(() => t.server!.stop());
    const octogenSim = await startOctogenSimulator(demoOctogenIndex());
    stops.push(() => octogenSim.close());
    const insiderSim = await startInsiderSimulator({ ...demoInsiderCatalog(), requestsPerMinute: 60 });
    stops.push(() => insiderSim.close());

    const taskQueue = `catalog-sync-demo-${randomUUID().slice(0, 8)}`;
    const nativeConnection = await NativeConnection.connect({ address: t.address });
    const worker = await createSyncWorker({
      connection: nativeConnection,
      namespace: t.namespace,
      taskQueue,
      activityDeps: {
        env: {
          OCTOGEN_BASE_URL: octogenSim.url,
          OCTOGEN_PLATFORM_API_KEY: DEMO_OCTOGEN_KEY,
          INSIDER_BASE_URL: insiderSim.url,
          INSIDER_PARTNER_NAME: DEMO_INSIDER_PARTNER,
          INSIDER_REQUEST_TOKEN: DEMO_INSIDER_TOKEN,
        },
      },
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
    say(`  Temporal ${t.address} (UI ${t.uiUrl}), task queue ${taskQueue}`);
    say(`  Octogen simulator ${octogenSim.url}, Insider simulator ${insiderSim.url}`);

    const examples = path.join(projectRoot(), 'examples');
    const links: string[] = [];
    const demoSync = async (provider: string, targetsFile: string, fixesFile: string) => {
      const targets = await readTargetsFile(path.join(examples, targetsFile));
      say(`\n== ${provider}: submit ${targets.length} targets (examples/${targetsFile}), one of them malformed`);
      const { workflowId } = await startSync(
        client,
        { provider, key: `demo-${randomUUID().slice(0, 8)}`, targets: targets.map((x) => x.value) },
        taskQueue,
      );
      links.push(workflowUiLink(settings, workflowId));
      const first = await awaitFirstPass(client, workflowId);
      say(formatReport(workflowId, first.report, workflowUiLink(settings, workflowId)));

      const fixes = (await readTargetsFile(path.join(examples, fixesFile))).map((x) => x.value);
      say(`\n== ${provider}: re-submit corrections by update (examples/${fixesFile})`);
      say(formatResubmission(await resubmit(client, workflowId, fixes as ResubmissionItem[])));
      // The sync closes by itself once nothing is left to fix; what cannot be fixed here is finished.
      let status = await getStatus(client, workflowId).catch(() => undefined);
      while (status && status.phase !== 'closed' && status.counts.pending > 0) {
        await new Promise((r) => setTimeout(r, 200));
        status = await getStatus(client, workflowId).catch(() => undefined);
      }
      if (status && status.phase !== 'closed' && status.rejected.length > 0) {
        say(
          `   (${status.rejected.map((r) => `${r.id} ${r.code}`).join(', ')} cannot be fixed here: finishing the sync)`,
        );
        await finish(client, workflowId);
      }
      const final = await awaitReport(client, workflowId);
      say(`\n== ${provider}: the final report`);
      say(formatReport(workflowId, final.report, workflowUiLink(settings, workflowId)));
      const c = final.report.counts;
      say(
        `   every target in exactly one state: ${c.submitted} = ${c.accepted} + ${c.rejected} + ${c.failed} + ${c.superseded}`,
      );
    };

    await demoSync('octogen', 'octogen-targets.ndjson', 'octogen-fixes.json');
    await demoSync('insider', 'insider-updates.json', 'insider-fixes.json');
    say(
      `\nThe simulators received ${octogenSim.requests.length} Octogen and ${insiderSim.requests.length} Insider calls.`,
    );

    if (keep) {
      say(`\nStill running (--keep): open ${links.join(' or ')}; Ctrl-C to stop.`);
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
