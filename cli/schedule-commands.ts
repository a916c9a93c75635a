/**
 * `catalog-sync schedule create|list|describe|pause|unpause|trigger|delete`: scheduled syncs over
 * Temporal Schedules. Errors are one line on stderr with a non-zero exit, as for every command.
 */
import { Command, Option } from 'commander';
import { ScheduleNotFoundError } from '@temporalio/client';
import { providerNames } from '../activities/providers/index.ts';
import { DurationSchema, type SyncOptions } from '../contracts/index.ts';
import { CliError, optionsFromFlags, withClient } from './cli-support.ts';
import { temporalSettings, type TemporalSettings } from '../temporal/connection.ts';
import {
  ScheduleRequestError,
  createSyncSchedule,
  deleteSyncSchedule,
  describeSyncSchedule,
  listSyncSchedules,
  pauseSyncSchedule,
  scheduledWorkflowIdPrefix,
  triggerSyncSchedule,
  unpauseSyncSchedule,
  validateSyncScheduleRequest,
  type ScheduleSource,
  type SyncScheduleDescription,
  type SyncScheduleRequest,
  type SyncScheduleSummary,
} from '../client/schedules.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);

export const scheduleUiLink = (s: Pick<TemporalSettings, 'uiUrl' | 'namespace'>, scheduleId: string): string =>
  `${s.uiUrl}/namespaces/${encodeURIComponent(s.namespace)}/schedules/${encodeURIComponent(scheduleId)}`;

/** Schedule errors the CLI explains in one line. */
const explainSchedule = (err: unknown, settings: TemporalSettings): CliError | undefined => {
  if (err instanceof ScheduleNotFoundError) {
    return new CliError(
      `no schedule "${err.scheduleId}" in namespace "${settings.namespace}": \`catalog-sync schedule list\` shows them`,
    );
  }
  return err instanceof ScheduleRequestError ? new CliError(err.message) : undefined;
};
const withScheduleClient = <T>(fn: Parameters<typeof withClient<T>>[0]): Promise<T> => withClient(fn, explainSchedule);

const sourceText = (s: ScheduleSource | undefined): string =>
  s === undefined ? '?' : 'feed' in s ? `feed ${s.feed}` : 'file' in s ? `file ${s.file}` : `url ${s.url}`;
const whenText = (s: { cron?: string | undefined; every?: string | undefined }): string =>
  s.cron !== undefined ? `cron "${s.cron}"` : s.every !== undefined ? `every ${s.every}` : '?';

function formatSummary(s: SyncScheduleSummary): string {
  const next = s.paused ? 'paused' : `next ${s.nextRuns[0] ?? '-'}`;
  return `${s.id}  ${s.provider ?? '?'}  ${whenText(s)}  ${sourceText(s.source)}  ${next}${s.note ? `  (${s.note})` : ''}`;
}

function formatDescription(d: SyncScheduleDescription, link: string): string {
  const lines = [
    `schedule ${d.id} (${d.provider ?? '?'}): ${d.paused ? 'PAUSED' : 'active'}${d.note ? ` (${d.note})` : ''}`,
    `  when:        ${whenText(d)}; overlap ${d.overlap}; catch-up window ${d.catchupWindow}`,
    `  source:      ${sourceText(d.source)}`,
    `  task queue:  ${d.taskQueue}; runs ${d.workflowIdPrefix ?? '?'}-<time>, each syncing as <run id>/sync`,
  ];
  if (d.options && Object.keys(d.options).length > 0) lines.push(`  options:     ${JSON.stringify(d.options)}`);
  lines.push(
    `  carry:       ${d.carryForward ? `each run carries forward transient rejections and failures${d.carryRejected ? ', and every rejection,' : ''} as <run id>/carried` : 'off'}`,
  );
  if (d.lastCursor !== undefined)
    lines.push(`  feed cursor: ${d.lastCursor} (the last successful run's; the next run starts there)`);
  lines.push(
    `  runs:        ${d.actionsTaken} started, ${d.skippedOverlap} skipped (overlap), ${d.missedCatchupWindow} missed (catch-up window)`,
  );
  if (d.running.length > 0) lines.push(`  running:     ${d.running.join(', ')}`);
  if (!d.paused && d.nextRuns.length > 0) lines.push(`  next:        ${d.nextRuns.slice(0, 3).join(', ')}`);
  if (d.recentRuns.length > 0) {
    lines.push('  recent runs:');
    for (const r of [...d.recentRuns].reverse()) lines.push(`    ${r.startedAt}  ${r.status ?? '?'}  ${r.workflowId}`);
  }
  lines.push(`  Temporal UI: ${link}`);
  return lines.join('\n');
}

function durationOption(flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !DurationSchema.safeParse(value).success)
    throw new CliError(`${flag} "${value}" is not a duration: use e.g. 90s, 30m or 1h`);
  return value;
}

interface CreateFlags {
  provider: string;
  targetsFile?: string;
  targetsUrl?: string;
  feed?: string;
  cron?: string;
  every?: string;
  overlap: 'skip' | 'buffer-one';
  catchupWindow?: string;
  window?: string;
  batchSize?: string;
  paused?: boolean;
  sendAll?: boolean;
  note?: string;
  json?: boolean;
  carryForward: boolean;
  carryRejected?: boolean;
}

function createRequest(id: string, o: CreateFlags, taskQueue: string): SyncScheduleRequest {
  const sources: ScheduleSource[] = [
    ...(o.targetsFile !== undefined ? [{ file: o.targetsFile }] : []),
    ...(o.targetsUrl !== undefined ? [{ url: o.targetsUrl }] : []),
    ...(o.feed !== undefined ? [{ feed: o.feed }] : []),
  ];
  const [source] = sources;
  if (sources.length !== 1 || source === undefined)
    throw new CliError('give exactly one source: --targets-file FILE, --targets-url URL or --feed URL');
  if ((o.cron === undefined) === (o.every === undefined))
    throw new CliError('give exactly one of --cron EXPR (e.g. "0 * * * *") or --every DURATION (e.g. 15m)');
  // The same limits as submit's: a window of at most 30d, a batch size within the provider's maximum.
  const options: SyncOptions = {
    ...optionsFromFlags(o.provider, o),
    // A file or URL schedule sends only what changed by default (client/schedules.ts).
    ...(o.sendAll ? { changedOnly: false } : {}),
  };
  const every = durationOption('--every', o.every);
  const catchupWindow = durationOption('--catchup-window', o.catchupWindow);
  return {
    id,
    provider: o.provider,
    source,
    ...(o.cron !== undefined ? { cron: o.cron } : {}),
    ...(every !== undefined ? { every } : {}),
    overlap: o.overlap,
    ...(catchupWindow !== undefined ? { catchupWindow } : {}),
    ...(Object.keys(options).length > 0 ? { options } : {}),
    ...(o.paused ? { paused: true } : {}),
    ...(o.note !== undefined ? { note: o.note } : {}),
    ...(o.carryForward === false ? { carryForward: false } : {}),
    ...(o.carryRejected === true ? { carryRejected: true } : {}),
    taskQueue,
  };
}

export function scheduleCommand(): Command {
  const cmd = new Command('schedule').description(
    'scheduled syncs (Temporal Schedules): create, list, describe, pause, unpause, trigger, delete',
  );

  cmd
    .command('create <id>')
    .description('create a schedule that syncs a provider from a file, a URL or a change feed')
    .addOption(new Option('--provider <name>', 'provider to sync to').choices(providerNames()).makeOptionMandatory())
    .option('--targets-file <file>', 'an NDJSON file every worker can read, synced whole on each run')
    .option('--targets-url <url>', 'an http(s) URL of NDJSON, synced whole on each run')
    .option('--feed <url>', 'a change feed: GET URL?since=CURSOR answers {"targets": [...], "cursor": "..."}')
    .option('--cron <expr>', 'when to run, as a cron expression in UTC (e.g. "0 * * * *")')
    .option('--every <duration>', 'or run every DURATION (e.g. 15m, 1h)')
    .addOption(
      new Option('--overlap <policy>', 'a run due while another runs: skip it, or keep one to start after')
        .choices(['skip', 'buffer-one'])
        .default('skip'),
    )
    .option('--catchup-window <duration>', 'how late a missed run may still start (default 10m)')
    .option('--window <duration>', "each sync's re-submission window (default 0s: closes when sent)")
    .option('--batch-size <n>', 'targets per provider call (at most the provider limit)')
    .option(
      '--no-carry-forward',
      'do not send again, in each run, the items an earlier sync left rejected for a transient reason or failed',
    )
    .option('--carry-rejected', 'carry forward every rejected item too, not only transient rejections and failures')
    .option('--paused', 'create it paused (unpause to start)')
    .option(
      '--send-all',
      'send the whole file or URL each run (default: only targets changed since the provider last accepted them)',
    )
    .option('--note <text>', 'a note shown with the schedule')
    .option('--json', 'print JSON on stdout and nothing else')
    .action(async (id: string, o: CreateFlags) => {
      const settings = temporalSettings();
      const request = createRequest(id, o, settings.taskQueue);
      try {
        validateSyncScheduleRequest(request); // before connecting: a bad cron is named at once
      } catch (err) {
        if (err instanceof ScheduleRequestError) throw new CliError(err.message);
        throw err;
      }
      await withScheduleClient(async (client, s) => {
        const { scheduleId } = await createSyncSchedule(client, request);
        if (o.json) {
          out(JSON.stringify({ scheduleId, workflowIdPrefix: scheduledWorkflowIdPrefix(o.provider, scheduleId) }));
          return;
        }
        out(
          `created schedule ${scheduleId}${o.paused ? ' (paused)' : ''}: ${whenText(request)}, ${sourceText(request.source)}\n` +
            `  runs start as ${scheduledWorkflowIdPrefix(o.provider, scheduleId)}-<time> on task queue ${s.taskQueue}\n` +
            `  Temporal UI: ${scheduleUiLink(s, scheduleId)}`,
        );
      });
    });

  cmd
    .command('list')
    .description("list the namespace's catalog-sync schedules")
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) =>
      withScheduleClient(async (client, s) => {
        const schedules = await listSyncSchedules(client);
        if (o.json) out(JSON.stringify(schedules));
        else if (schedules.length === 0) out(`no catalog-sync schedules in namespace "${s.namespace}"`);
        else for (const sched of schedules) out(formatSummary(sched));
      }),
    );

  cmd
    .command('describe <id>')
    .description('what a schedule runs, when, its recent runs and (feed) the cursor the next run starts from')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) =>
      withScheduleClient(async (client, s) => {
        const d = await describeSyncSchedule(client, id);
        out(o.json ? JSON.stringify(d) : formatDescription(d, scheduleUiLink(s, id)));
      }),
    );

  cmd
    .command('pause <id>')
    .description('stop starting runs (a run in progress goes on)')
    .option('--note <text>', 'why, shown with the schedule')
    .action(async (id: string, o: { note?: string }) =>
      withScheduleClient(async (client) => {
        await pauseSyncSchedule(client, id, o.note);
        out(`paused schedule ${id}`);
      }),
    );

  cmd
    .command('unpause <id>')
    .description('start runs again on the schedule')
    .option('--note <text>', 'shown with the schedule')
    .action(async (id: string, o: { note?: string }) =>
      withScheduleClient(async (client) => {
        await unpauseSyncSchedule(client, id, o.note);
        out(`unpaused schedule ${id}`);
      }),
    );

  cmd
    .command('trigger <id>')
    .description("start a run now, under the schedule's overlap policy")
    .action(async (id: string) =>
      withScheduleClient(async (client) => {
        const { overlap, running } = await triggerSyncSchedule(client, id);
        if (running.length > 0) {
          out(
            `a run of ${id} is in progress (${running.join(', ')}): with overlap ${overlap} this run ` +
              (overlap === 'skip' ? 'is skipped' : 'starts when it ends'),
          );
        } else out(`triggered schedule ${id}`);
      }),
    );

  cmd
    .command('delete <id>')
    .description('delete the schedule (a run in progress goes on to its end)')
    .action(async (id: string) =>
      withScheduleClient(async (client) => {
        await deleteSyncSchedule(client, id);
        out(`deleted schedule ${id}`);
      }),
    );

  return cmd;
}
