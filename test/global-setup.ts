/**
 * Once per test run: a real Temporal dev server (in memory, search attributes registered), the
 * workflow bundle, built once and shared by every suite's workers, and a real PostgreSQL server
 * for the target-state store (each suite makes its own database on it: test/helpers/state.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../scripts/dev-server.ts';
import { startPostgres, type PostgresServer } from '../scripts/postgres.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import { workflowBundleOptions } from '../worker/worker.ts';
import { scanRuns } from './helpers/histories.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    workflowBundlePath: string;
    /** The run's PostgreSQL server (postgres://user:password@127.0.0.1:port/postgres). */
    postgresUrl: string;
  }
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let server: DevServer | undefined;
  let postgres: PostgresServer | undefined;
  const [started, bundle, pg] = await Promise.all([
    startDevServer({ headless: true, log: 'quiet' }).then((s) => (server = s)),
    bundleWorkflowCode({ ...workflowBundleOptions(), logger: quietLogger }),
    startPostgres().then((p) => (postgres = p)),
  ]).catch(async (err: unknown) => {
    await Promise.all([server?.stop(), postgres?.stop()]);
    throw err;
  });
  const dir = path.join(projectRoot(), '.artifacts');
  mkdirSync(dir, { recursive: true });
  // The store is on by default: workers a suite starts with the run's environment record in a file
  // of this run, not in the project's .data (suites that check the store make their own).
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'catalog-sync-test-state-'));
  process.env.CATALOG_SYNC_STATE_URL ??= `sqlite:${path.join(stateDir, 'target-state.sqlite')}`;
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('temporalAddress', started.address);
  project.provide('temporalNamespace', started.namespace);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('postgresUrl', pg.url);
  return async () => {
    try {
      await scanEveryHistory(started.address, started.namespace, dir);
    } catch (err) {
      // Vitest reports an error thrown here but still exits 0: the exit code must say it too.
      process.exitCode = 1;
      throw err;
    } finally {
      await Promise.all([server?.stop(), postgres?.stop()]);
      rmSync(stateDir, { recursive: true, force: true });
    }
  };
}

/**
 * The promise that no payload the product puts into Temporal passes 256 KB, checked over every
 * history every suite left in the namespace (not only those a test chose to scan). A payload over
 * it fails the run, naming the workflow, the event and where in it.
 */
async function scanEveryHistory(address: string, namespace: string, dir: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const scan = await scanRuns(new Client({ connection, namespace }), undefined);
    writeFileSync(path.join(dir, 'history-scan.json'), `${JSON.stringify(scan, null, 2)}\n`);
    process.stdout.write(
      `history scan: ${scan.runs} runs, ${scan.events} events, ${scan.payloads} payloads, ` +
        `${scan.refusedTasks.length} workflow tasks refused, ` +
        `largest ${scan.largest?.bytes ?? 0} bytes (${scan.largest?.eventType ?? '-'} of ${scan.largest?.workflowId ?? '-'})\n`,
    );
    if (scan.over.length > 0) {
      throw new Error(
        `${scan.over.length} payloads over 256 KB in test histories, first: ${JSON.stringify(scan.over[0])}`,
      );
    }
    if (scan.refusedTasks.length > 0) {
      throw new Error(
        `${scan.refusedTasks.length} workflow tasks refused by workflows/activation-guard.ts, first: ` +
          JSON.stringify(scan.refusedTasks[0]),
      );
    }
  } finally {
    await connection.close();
  }
}
