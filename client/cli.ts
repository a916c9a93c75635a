/**
 * The catalog-sync CLI: submit, status, resubmit, finish, result, worker. Every error is one line
 * on stderr that says what is wrong and how to fix it, with a non-zero exit.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { CliError, withClient } from './cli-support.ts';
import { providerAdapter, providerNames } from '../activities/providers/index.ts';
import { describeIssues } from '../activities/plan.ts';
import { DurationSchema, ResubmissionItemSchema, type ResubmissionItem, type SyncOptions } from '../contracts/index.ts';
import { runWorker } from '../worker/main.ts';
import { workflowUiLink, type TemporalSettings } from './connection.ts';
import { formatReport, formatResubmission } from './format.ts';
import { scheduleCommand } from './schedule-commands.ts';
import { createProgress } from './progress.ts';
import {
  INLINE_LIMIT_BYTES,
  SyncRequestError,
  awaitFirstPass,
  awaitReport,
  finish,
  getStatus,
  resubmit,
  startSync,
  type SyncOutcome,
} from './sync-client.ts';
import { isLargeNdjson, readTargetsFile, scanNdjson, type FileTarget } from './targets-file.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);

/** A sync id that names nothing gets a line that says what ids look like. */
const explainSync = (err: unknown, settings: TemporalSettings): CliError | undefined =>
  err instanceof WorkflowNotFoundError
    ? new CliError(
        `no sync with that id in namespace "${settings.namespace}": check the id (catalog-sync-<provider>-<key>)`,
      )
    : undefined;
const withSyncClient = <T>(fn: Parameters<typeof withClient<T>>[0]): Promise<T> => withClient(fn, explainSync);

/** Checks every target against the provider's schema before anything starts. */
function checkTargets(provider: string, file: string, targets: FileTarget[]): string[] {
  const adapter = providerAdapter(provider);
  if (!adapter) throw new CliError(`unknown provider "${provider}": use one of ${providerNames().join(', ')}`);
  const problems: string[] = [];
  for (const { line, value } of targets) {
    const parsed = adapter.targetSchema.safeParse(value);
    if (!parsed.success) problems.push(`${file} line ${line}: ${describeIssues(parsed.error)}`);
  }
  return problems;
}

function printOutcome(settings: TemporalSettings, workflowId: string, outcome: SyncOutcome, json: boolean): void {
  if (json)
    out(JSON.stringify(outcome.abortReason ? { ...outcome.report, abortReason: outcome.abortReason } : outcome.report));
  else out(formatReport(workflowId, outcome.report, workflowUiLink(settings, workflowId), outcome.abortReason));
  if (outcome.abortReason) process.exitCode = 1;
}

/** A re-submission file holds corrected targets, or `{"fixes": "t3", "target": {...}}` items. */
function toResubmissionItems(targets: FileTarget[]): ResubmissionItem[] {
  return targets.map(({ value }) => {
    const wrapped = ResubmissionItemSchema.safeParse(value);
    const isWrapper = typeof value === 'object' && value !== null && 'target' in value;
    if (isWrapper && wrapped.success) return wrapped.data;
    return { target: value };
  });
}

export function buildCli(): Command {
  const program = new Command('catalog-sync').description(
    'Push product catalog changes to catalog services as durable Temporal workflows',
  );

  program
    .command('submit')
    .description('start a sync of the targets in FILE (a JSON array or NDJSON)')
    .addOption(new Option('--provider <name>', 'provider to sync to').choices(providerNames()).makeOptionMandatory())
    .requiredOption('--targets <file>', 'targets file: a JSON array or NDJSON')
    .option('--key <key>', "the caller's idempotency key: the same key never starts a second sync")
    .option('--window <duration>', 're-submission window once the first pass settles (e.g. 30m, 1h)')
    .option('--batch-size <n>', 'targets per provider call (at most the provider limit)')
    .option('--allow-invalid', 'start even when some targets are malformed; they are reported as rejected')
    .option('--wait', 'wait until the first pass has settled and print the report')
    .option('--json', 'print JSON on stdout and nothing else')
    .action(
      async (o: {
        provider: string;
        targets: string;
        key?: string;
        window?: string;
        batchSize?: string;
        allowInvalid?: boolean;
        wait?: boolean;
        json?: boolean;
      }) => {
        const adapter = providerAdapter(o.provider);
        if (!adapter) throw new CliError(`unknown provider "${o.provider}": use one of ${providerNames().join(', ')}`);
        // A large NDJSON file goes by reference: checked line by line here, read by slice by the workers.
        const byReference = await isLargeNdjson(o.targets, INLINE_LIMIT_BYTES);
        let targets: FileTarget[] = [];
        let problems: string[];
        let problemCount: number;
        if (byReference) {
          ({ problems, problemCount } = await scanNdjson(o.targets, (value) => {
            const parsed = adapter.targetSchema.safeParse(value);
            return parsed.success ? undefined : describeIssues(parsed.error);
          }));
        } else {
          targets = await readTargetsFile(o.targets);
          problems = checkTargets(o.provider, o.targets, targets);
          problemCount = problems.length;
        }
        if (problemCount > 0 && !o.allowInvalid) {
          const more = problemCount > 1 ? ` (and ${problemCount - 1} more malformed targets)` : '';
          throw new CliError(
            `${problems[0]}${more}; fix them, or pass --allow-invalid to have them reported as rejected`,
          );
        }
        const options: SyncOptions = {};
        if (o.window !== undefined) {
          if (!DurationSchema.safeParse(o.window).success)
            throw new CliError(`--window "${o.window}" is not a duration: use e.g. 90s, 30m or 1h`);
          options.resubmissionWindow = o.window;
        }
        if (o.batchSize !== undefined) {
          const n = Number(o.batchSize);
          if (!Number.isInteger(n) || n <= 0)
            throw new CliError(`--batch-size "${o.batchSize}" must be a positive whole number`);
          options.batchSize = n;
        }
        await withSyncClient(async (client, settings) => {
          const started = await startSync(
            client,
            {
              provider: o.provider,
              ...(byReference
                ? { targetsRef: { file: path.resolve(o.targets) } }
                : { targets: targets.map((t) => t.value) }),
              ...(o.key ? { key: o.key } : {}),
              options,
            },
            settings.taskQueue,
          );
          if (!started.started && !o.json)
            out(`a sync with key "${o.key}" already exists: ${started.workflowId} (nothing new was started)`);
          if (!o.wait) {
            if (o.json) out(JSON.stringify(started));
            else out(`started ${started.workflowId}\n  Temporal UI: ${workflowUiLink(settings, started.workflowId)}`);
            return;
          }
          // Progress goes to stderr, so stdout carries only the report; --json output stays machine-only.
          const progress = o.json
            ? undefined
            : createProgress({
                isTTY: Boolean(process.stdout.isTTY && process.stderr.isTTY),
                write: (text) => process.stderr.write(text),
              });
          const outcome = await awaitFirstPass(
            client,
            started.workflowId,
            progress ? { onProgress: (r) => progress.update(r) } : {},
          );
          // The last poll may predate the end: draw the settled counts before the report.
          progress?.update(outcome.report, true);
          progress?.end();
          printOutcome(settings, started.workflowId, outcome, Boolean(o.json));
        });
      },
    );

  program
    .command('status <id>')
    .description("print a sync's status: phase, counts, rejected targets")
    .option('--json', 'print the status as JSON')
    .action(async (id: string, o: { json?: boolean }) =>
      withSyncClient(async (client, settings) =>
        printOutcome(settings, id, { report: await getStatus(client, id) }, Boolean(o.json)),
      ),
    );

  program
    .command('resubmit <id>')
    .description('send corrected targets for rejected ones (each a target, or {"fixes": "t3", "target": {...}})')
    .requiredOption('--targets <file>', 'corrected targets: a JSON array or NDJSON')
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, o: { targets: string; json?: boolean }) => {
      const items = toResubmissionItems(await readTargetsFile(o.targets));
      await withSyncClient(async (client) => {
        const answer = await resubmit(client, id, items);
        out(o.json ? JSON.stringify(answer) : formatResubmission(answer));
      });
    });

  program
    .command('finish <id>')
    .description('close the sync now; it settles what is in flight and returns its report')
    .action(async (id: string) =>
      withSyncClient(async (client) => {
        await finish(client, id);
        out(`asked ${id} to finish`);
      }),
    );

  program
    .command('result <id>')
    .description('wait for the sync to close and print its final report')
    .option('--json', 'print the report as JSON')
    .action(async (id: string, o: { json?: boolean }) =>
      withSyncClient(async (client, settings) =>
        printOutcome(settings, id, await awaitReport(client, id), Boolean(o.json)),
      ),
    );

  program
    .command('worker')
    .description('run a worker (configuration from the environment)')
    .action(async () => runWorker());

  program.addCommand(scheduleCommand());

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    const e = err as Error;
    const known =
      e instanceof CliError ||
      e instanceof SyncRequestError ||
      e.name === 'TargetsFileError' ||
      e.name === 'CodecConfigError' ||
      e.name === 'WorkerConfigError';
    process.stderr.write(`catalog-sync: ${known ? e.message : `${e.name}: ${e.message.split('\n')[0]}`}\n`);
    process.exitCode = 1;
  }
}
