/**
 * Once per test run: a real Temporal dev server (in memory, search attributes registered) and the
 * workflow bundle, built once and shared by every suite's workers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../scripts/dev-server.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import { workflowsPath } from '../worker/worker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    workflowBundlePath: string;
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
  const [started, bundle] = await Promise.all([
    startDevServer({ headless: true, log: 'quiet' }).then((s) => (server = s)),
    bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: quietLogger }),
  ]);
  const dir = path.join(projectRoot(), '.artifacts');
  mkdirSync(dir, { recursive: true });
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('temporalAddress', started.address);
  project.provide('temporalNamespace', started.namespace);
  project.provide('workflowBundlePath', bundlePath);
  return async () => {
    await server?.stop();
  };
}
