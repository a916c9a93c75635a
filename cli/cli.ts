/**
 * The catalog-sync CLI: submit, status, resubmit, finish, result, worker, setup, schedule, target. Every error is one line
 * on stderr that says what is wrong and how to fix it, with a non-zero exit.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import {
  QueryNotRegisteredError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  isGrpcServiceError,
  type Client,
} from '@temporalio/client';
import { CliError, optionsFromFlags, withClient } from './cli-support.ts';
import { registerSearchAttributes } from '../client/setup.ts';
import type { AnyProviderAdapter } from '../activities/providers/adapter.ts';
import { providerAdapter, providerNames } from '../activities/providers/index.ts';
import { ResubmissionItemSchema, type ResubmissionItem } from '../contracts/index.ts';
import { runWorker } from '../worker/main.ts';
import { workflowUiLink, type TemporalSettings } from '../temporal/connection.ts';
import { formatDryRun, formatReport, formatResubmission } from './format.ts';
import { dryRunSync } from '../client/dry-run.ts';
import { scheduleCommand } from './schedule-commands.ts';
import { targetCommand } from './target-commands.ts';
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
} from '../client/sync-client.ts';
import { isLargeNdjson, readTargetsFile, scanNdjson, type FileTarget } from './targets-file.ts';
import { checkSyncRequest, oneLine, quote, targetChecker } from '../client/request-check.ts';
import { temporalSettings } from '../temporal/connection.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);

/** A sync id that names nothing gets a line that says what ids look like. */
const explainSync = (err: unknown, settings: TemporalSettings): CliError | undefined => {
  if (err instanceof WorkflowNotFoundError) {
    return new CliError(
      `no sync with that id in namespace "${settings.namespace}": check the id (catalog-sync-<provider>-<key>, as submit printed it)`,
    );
  }
  if (err instanceof QueryNotRegisteredError) {
    return new CliError('that workflow is not a sync: give the id submit printed (catalog-sync-<provider>-<key>)');
  }
  return undefined;
};
const withSyncClient = <T>(fn: Parameters<typeof withClient<T>>[0]): Promise<T> => withClient(fn, explainSync);

/** A sync id as the user typed it: refused before any call when it cannot name a sync. */
function checkSyncId(id: string): string {
  if (id.trim() === '')
    throw new CliError('the sync id is empty: give the id submit printed (catalog-sync-<provider>-<key>)');
  if (oneLine(id) !== id || id.length > 1000)
    throw new CliError(
      `the sync id ${quote(id)} is not printable text: give the id submit printed (catalog-sync-<provider>-<key>)`,
    );
  const slice = /^(.*)\/slice-\d+$/.exec(id);
  if (slice) throw new CliError(`${quote(id)} is a slice of sync ${quote(slice[1])}: give the sync's own id`);
  if (!providerNames().some((p) => id.startsWith(`catalog-sync-${p}-`)))
    throw new CliError(
      `${quote(id)} is not a sync id: sync ids look like catalog-sync-<provider>-<key> (${providerNames().join(', ')})`,
    );
  return id;
}

/**
 * A signal or update that finds no running sync: tell a closed sync (and how it closed) from one
 * that never existed, and say what to do instead.
 */
async function closedOrMissing(
  client: Client,
  id: string,
  settings: TemporalSettings,
  then: string,
): Promise<CliError> {
  try {
    const { status } = await client.workflow.getHandle(id).describe();
    return new CliError(`sync ${id} is closed (${status.name.toLowerCase()}); ${then}`);
  } catch (err) {
    return (
      explainSync(err, settings) ?? new CliError(`sync ${id} cannot be reached: ${oneLine((err as Error).message)}`)
    );
  }
}

/**
 * The check every target gets before anything starts (client/request-check.ts), naming file lines:
 * the first few problems, how many in all, and the first duplicate product.
 */
function checkTargets(adapter: AnyProviderAdapter, file: string, targets: FileTarget[], keep = 5) {
  const checker = targetChecker(adapter);
  const problems: string[] = [];
  let problemCount = 0;
  let duplicate: string | undefined;
  for (const { line, value } of targets) {
    const problem = checker.check(value, `line ${line}`);
    if (!problem) continue;
    const text = `${file} line ${line}: ${problem.message}`;
    problemCount += 1;
    if (problems.length < keep) problems.push(text);
    if (problem.code === 'duplicate_target') duplicate ??= text;
  }
  return { targets: targets.length, problems, problemCount, ...(duplicate !== undefined ? { duplicate } : {}) };
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
    .option('--priority <1-5>', 'priority of the sync: 1 most urgent .. 5 least (default 3)')
    .option(
      '--changed-only',
      'send only targets whose content differs from the last one the provider accepted; the rest are counted unchanged',
    )
    .option('--allow-invalid', 'start even when some targets are malformed; they are reported as rejected')
    .option('--wait', 'wait until the first pass has settled and print the report')
    .option('--dry-run', 'validate and plan the batches, print what a real run would send; start nothing, call nothing')
    .option('--json', 'print JSON on stdout and nothing else')
    .action(
      async (o: {
        provider: string;
        targets: string;
        key?: string;
        window?: string;
        batchSize?: string;
        priority?: string;
        changedOnly?: boolean;
        allowInvalid?: boolean;
        wait?: boolean;
        dryRun?: boolean;
        json?: boolean;
      }) => {
        const adapter = providerAdapter(o.provider);
        if (!adapter) throw new CliError(`unknown provider "${o.provider}": use one of ${providerNames().join(', ')}`);
        // Flags first: cheap, and a wrong flag should not wait for a large file to be read.
        const options = optionsFromFlags(o.provider, o);
        try {
          checkSyncRequest({
            provider: o.provider,
            targetsRef: { file: path.resolve(o.targets) },
            ...(o.key !== undefined ? { key: o.key } : {}),
            options,
          });
        } catch (err) {
          if (err instanceof SyncRequestError)
            throw new CliError(err.message.replace(/^invalid sync request: key/, '--key'));
          throw err;
        }
        // A large NDJSON file goes by reference: checked line by line here, read by slice by the workers.
        const byReference = await isLargeNdjson(o.targets, INLINE_LIMIT_BYTES);
        if (o.dryRun) {
          // Read and planned here, as the worker would: nothing is started and no provider is called.
          const request = {
            provider: o.provider,
            ...(byReference
              ? { targetsRef: { file: path.resolve(o.targets) } }
              : { targets: (await readTargetsFile(o.targets)).map((t) => t.value) }),
            options,
          };
          const plan = await dryRunSync(request).catch((err: unknown) => {
            throw err instanceof SyncRequestError ? new CliError(err.message) : err;
          });
          out(o.json ? JSON.stringify(plan) : formatDryRun(plan));
          return;
        }
        let targets: FileTarget[] = [];
        let checked: { targets: number; problems: string[]; problemCount: number; duplicate?: string };
        if (byReference) {
          checked = await scanNdjson(o.targets, targetChecker(adapter));
        } else {
          targets = await readTargetsFile(o.targets);
          checked = checkTargets(adapter, o.targets, targets);
        }
        const { problems, problemCount } = checked;
        const more = problemCount > 1 ? ` (and ${problemCount - 1} more refused targets)` : '';
        if (checked.targets === 0) throw new CliError(`${o.targets} holds no targets: give at least one`);
        // Inline, a product named twice is refused whatever the flags (the library refuses it too).
        if (!byReference && checked.duplicate !== undefined)
          throw new CliError(`${checked.duplicate}${more}; nothing was started`);
        if (problemCount > 0 && !o.allowInvalid)
          throw new CliError(
            `${problems[0]}${more}; fix them, or pass --allow-invalid to have them reported as rejected`,
          );
        if (problemCount === checked.targets)
          throw new CliError(`${problems[0]}${more}: every target is refused, so nothing was started; fix them`);
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
    .action(async (id: string, o: { json?: boolean }) => {
      checkSyncId(id);
      await withSyncClient(async (client, settings) =>
        printOutcome(settings, id, { report: await getStatus(client, id) }, Boolean(o.json)),
      );
    });

  program
    .command('resubmit <id>')
    .description('send corrected targets for rejected ones (each a target, or {"fixes": "t3", "target": {...}})')
    .requiredOption('--targets <file>', 'corrected targets: a JSON array or NDJSON')
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, o: { targets: string; json?: boolean }) => {
      checkSyncId(id);
      const items = toResubmissionItems(await readTargetsFile(o.targets));
      if (items.length === 0) throw new CliError(`${o.targets} holds no corrected targets: give at least one`);
      await withSyncClient(async (client, settings) => {
        let answer;
        try {
          answer = await resubmit(client, id, items);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError)
            throw await closedOrMissing(
              client,
              id,
              settings,
              'it takes no re-submission: submit the corrected targets as a new sync',
            );
          if (err instanceof WorkflowUpdateFailedError)
            throw new CliError(`sync ${id} took nothing: ${oneLine(err.cause?.message ?? err.message)}`);
          throw err;
        }
        out(o.json ? JSON.stringify(answer) : formatResubmission(answer));
        // Nothing taken is a failure: scripts must not mistake it for a correction that landed.
        if (answer.taken.length === 0) {
          const first = answer.refused[0];
          throw new CliError(
            `nothing was taken: all ${answer.refused.length} items were refused` +
              (first ? ` (item ${first.index}: ${first.code}: ${oneLine(first.message)})` : '') +
              '; fix them (the answer above lists each) and resubmit',
          );
        }
      });
    });

  program
    .command('finish <id>')
    .description('close the sync now; it settles what is in flight and returns its report')
    .action(async (id: string) => {
      checkSyncId(id);
      await withSyncClient(async (client, settings) => {
        try {
          await finish(client, id);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError)
            throw await closedOrMissing(
              client,
              id,
              settings,
              `nothing to finish: see its report with \`catalog-sync result ${id}\``,
            );
          throw err;
        }
        out(`asked ${id} to finish`);
      });
    });

  program
    .command('result <id>')
    .description('wait for the sync to close and print its final report')
    .option('--json', 'print the report as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      checkSyncId(id);
      await withSyncClient(async (client, settings) =>
        printOutcome(settings, id, await awaitReport(client, id), Boolean(o.json)),
      );
    });

  program
    .command('worker')
    .description('run a worker (configuration from the environment)')
    .action(async () => runWorker());

  program
    .command('setup')
    .description('register the CatalogSync* search attributes on the namespace (TEMPORAL_NAMESPACE); safe to run again')
    .action(async () => {
      await withClient(async (client, settings) => {
        const r = await registerSearchAttributes(client, settings.namespace);
        out(
          r.added.length > 0
            ? `registered ${r.added.join(', ')} on namespace "${r.namespace}"${r.present.length > 0 ? ` (${r.present.length} were there already)` : ''}`
            : `namespace "${r.namespace}" has every CatalogSync* search attribute already; nothing to do`,
        );
      });
    });

  program.addCommand(scheduleCommand());
  program.addCommand(targetCommand());

  return program;
}

/** gRPC status codes Temporal answers with, as the fix a user can make. */
const GRPC_FIXES: Record<number, string> = {
  4: 'the Temporal server did not answer in time: check it is healthy, then try again',
  7: 'the Temporal server refused this client: check TEMPORAL_API_KEY (or the TLS client certificate) and its namespace permissions',
  14: 'the Temporal server cannot be reached: start one with `npm run dev-server`, or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) to your cluster',
  16: 'the Temporal server did not accept the credentials: check TEMPORAL_API_KEY (or the TLS client certificate)',
};

/** Any error as the one line the CLI prints: what went wrong and what to do about it. */
export function explainError(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const first = (m: string) => oneLine(m.split('\n')[0] ?? '');
  if (
    e instanceof CliError ||
    e instanceof SyncRequestError ||
    e.name === 'TargetsFileError' ||
    e.name === 'CodecConfigError' ||
    e.name === 'WorkerConfigError'
  ) {
    return oneLine(e.message);
  }
  // The worker's native connection (Rust core) fails with TransportError before any gRPC status.
  if (e.name === 'TransportError' || /tonic::transport|transport error|Connection refused/i.test(e.message)) {
    const { address } = temporalSettings();
    return `cannot reach the Temporal server at ${address}: start one with \`npm run dev-server\`, or set TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) to your cluster`;
  }
  for (const candidate of [e, (e as { cause?: unknown }).cause]) {
    if (isGrpcServiceError(candidate)) {
      const fix = GRPC_FIXES[candidate.code];
      if (fix) return fix;
      return `Temporal refused the request (${first(candidate.details || candidate.message)}): check the command's arguments, see catalog-sync --help`;
    }
  }
  if (e.name === 'ServiceError')
    return `Temporal refused the request (${first(e.message)}): check the command's arguments, see catalog-sync --help`;
  return `${e.name}: ${first(e.message)} (unexpected; run the command again, and report it with the command if it persists)`;
}

/** Commander's own errors (unknown option, missing argument) as one catalog-sync: line too. */
function oneLineErrors(command: Command): void {
  command.configureOutput({
    outputError: (text, write) =>
      write(
        `catalog-sync: ${oneLine(
          text
            .trim()
            .replace(/^error: /, '')
            .replace(/\n+/g, ' '),
        )}; see catalog-sync --help\n`,
      ),
  });
  for (const sub of command.commands) oneLineErrors(sub);
}

export async function main(argv: string[]): Promise<void> {
  try {
    const program = buildCli();
    oneLineErrors(program);
    await program.parseAsync(argv);
  } catch (err) {
    process.stderr.write(`catalog-sync: ${explainError(err)}\n`);
    process.exitCode = 1;
  }
}
