/**
 * Builds the sync workers: one for workflows (and the planning activity), and one per provider
 * this environment can call, polling that provider's activity task queue. A provider with a
 * request budget gets it as the queue's rate limit, which Temporal enforces across every worker.
 * More processes on the same task queue scale it out.
 */
import { fileURLToPath } from 'node:url';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { Runtime, Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { startSpoolSweeper } from '../activities/spool-sweeper.ts';
import { spoolRetentionMs } from '../activities/spool.ts';
import { sourceAllowlist } from '../activities/source-policy.ts';
import { createFeedActivities } from '../activities/feed.ts';
import { checkAlertWebhook, createAlertActivities } from '../activities/alerts.ts';
import { createActivities, type ActivityDeps } from '../activities/index.ts';
import { createGovernor } from '../activities/governor.ts';
import { stateLocation } from '../activities/state/index.ts';
import { providers } from '../activities/providers/index.ts';
import { providerTaskQueue } from '../contracts/index.ts';

export const workflowsPath = (): string => fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Interceptor modules every bundle of the sync workflows carries (workflows/activation-guard.ts). */
export const workflowInterceptorModules = (): string[] => [
  fileURLToPath(new URL('../workflows/activation-guard.ts', import.meta.url)),
];

/** What bundleWorkflowCode takes for this product's workflows: every bundle built from one place. */
export const workflowBundleOptions = (): { workflowsPath: string; workflowInterceptorModules: string[] } => ({
  workflowsPath: workflowsPath(),
  workflowInterceptorModules: workflowInterceptorModules(),
});

/**
 * Below the budget by this share, so a burst of the server's rate limiter (about a second's worth)
 * stays under the provider's window. Every dispatch on a budgeted queue makes at most one call
 * (activities/lane.ts, activities/index.ts), so the limit on dispatches is a limit on calls.
 */
const BUDGET_HEADROOM = 0.97;
/**
 * Heartbeats reach the server within this long: a lane heartbeats after every answered batch, and a
 * retried lane resumes from the last one the server has, so this bounds what a crash re-sends.
 */
const HEARTBEAT_THROTTLE = '20 milliseconds';

export interface ReadyProvider {
  provider: string;
  requestsPerMinute?: number;
}

export interface ProviderReadiness {
  ready: ReadyProvider[];
  missing: { provider: string; variables: string[]; hint: string }[];
}

/** Which providers this worker's environment can call, and what the others lack. */
export function providerReadiness(env: NodeJS.ProcessEnv): ProviderReadiness {
  const out: ProviderReadiness = { ready: [], missing: [] };
  for (const adapter of Object.values(providers)) {
    const read = adapter.configFromEnv(env);
    if ('missing' in read) {
      out.missing.push({ provider: adapter.name, variables: read.missing, hint: read.hint });
      continue;
    }
    const budget = adapter.budget?.(read.config);
    out.ready.push({ provider: adapter.name, ...(budget ? { requestsPerMinute: budget.requestsPerMinute } : {}) });
  }
  return out;
}

export interface SyncWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activityDeps: ActivityDeps;
  /** A prebuilt workflow bundle (tests build one per suite; CATALOG_SYNC_WORKFLOW_BUNDLE in production). */
  workflowBundlePath?: string;
  /** The payload codec's converter when payloads are encrypted (CATALOG_SYNC_CODEC_KEYS). */
  dataConverter?: WorkerOptions['dataConverter'];
  extra?: Partial<WorkerOptions>;
}

/** The workers of one process, run and stopped together. */
export interface SyncWorker {
  providers: ReadyProvider[];
  run(): Promise<void>;
  runUntil<T>(promise: Promise<T>): Promise<T>;
  shutdown(): void;
}

export async function createSyncWorker(opts: SyncWorkerOptions): Promise<SyncWorker> {
  // The provider-account governor's workflows run on this worker's own task queue (workflows/governor.ts).
  const ownClient = new Client({
    connection: opts.connection,
    namespace: opts.namespace,
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
  });
  const governor = opts.activityDeps.governor ?? {
    governor: createGovernor({ client: ownClient, taskQueue: opts.taskQueue }),
    taskQueue: opts.taskQueue,
  };
  /** The HTTP front's caller a sync was started for (its memo), recorded with its items in the target-state store. */
  const syncCaller = async (syncId: string): Promise<string | undefined> => {
    try {
      const caller = (await ownClient.workflow.getHandle(syncId).describe()).memo?.caller;
      return typeof caller === 'string' ? caller : undefined;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  };
  // A CATALOG_SYNC_STATE_URL the store cannot use stops the worker here, in one line (never its value).
  stateLocation(opts.activityDeps.env);
  const activities = createActivities({ syncCaller, ...opts.activityDeps, governor });
  // A malformed CATALOG_SYNC_SPOOL_RETENTION, CATALOG_SYNC_SOURCE_URLS or CATALOG_SYNC_ALERT_WEBHOOK_URL
  // stops the worker here, in one line.
  spoolRetentionMs(opts.activityDeps.env);
  sourceAllowlist(opts.activityDeps.env);
  checkAlertWebhook(opts.activityDeps.env);
  /** While the workers run, old spooled files of closed syncs are swept (activities/spool.ts). */
  const sweeping = async <T>(run: () => Promise<T>): Promise<T> => {
    const sweeper = startSpoolSweeper({
      env: opts.activityDeps.env,
      client: new Client({ connection: opts.connection, namespace: opts.namespace }),
      warn: (message, meta) => Runtime.instance().logger.warn(message, meta),
    });
    try {
      return await run();
    } finally {
      sweeper.stop();
    }
  };
  const ready = providerReadiness(opts.activityDeps.env).ready;
  const base = {
    connection: opts.connection,
    namespace: opts.namespace,
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
  };
  const workers = [
    await Worker.create({
      ...base,
      taskQueue: opts.taskQueue,
      activities: {
        planTargets: activities.planTargets,
        planSlice: activities.planSlice,
        scanSource: activities.scanSource,
        releaseSource: activities.releaseSource,
        // A schedule's run: the items it carries forward, read from the target-state store.
        carriedTargets: activities.carriedTargets,
        // Scheduled syncs' change feeds; they use the worker's own client to find the last cursor.
        ...createFeedActivities({
          env: opts.activityDeps.env,
          ...(opts.activityDeps.dispatcher ? { dispatcher: opts.activityDeps.dispatcher } : {}),
        }),
        // Alerts (docs/alerts.md): the webhook URL is read from this worker's environment only.
        ...createAlertActivities({ env: opts.activityDeps.env }),
      },
      ...(opts.workflowBundlePath
        ? { workflowBundle: { codePath: opts.workflowBundlePath } }
        : { workflowsPath: workflowsPath(), interceptors: { workflowModules: workflowInterceptorModules() } }),
      ...opts.extra,
    }),
  ];
  for (const p of ready) {
    workers.push(
      await Worker.create({
        ...base,
        taskQueue: providerTaskQueue(opts.taskQueue, p.provider),
        activities: { sendBatch: activities.sendBatch, sendLane: activities.sendLane },
        maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
        ...(p.requestsPerMinute !== undefined
          ? { maxTaskQueueActivitiesPerSecond: (p.requestsPerMinute * BUDGET_HEADROOM) / 60 }
          : {}),
      }),
    );
  }
  return {
    providers: ready,
    run: () =>
      sweeping(async () => {
        await Promise.all(workers.map((w) => w.run()));
      }),
    runUntil: async <T>(promise: Promise<T>): Promise<T> => {
      // Every worker drains before the outcome is given back, whether the promise settles well or not.
      await sweeping(() => Promise.all(workers.map((w) => w.runUntil(promise.catch(() => undefined)))));
      return promise;
    },
    shutdown: () => {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
