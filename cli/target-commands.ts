/**
 * `catalog-sync target show|list`: where every product stands, read from the target-state store
 * (CATALOG_SYNC_STATE_URL, or the embedded SQLite file) without asking Temporal. Errors are one
 * line on stderr with a non-zero exit, as for every command; the store's password is never shown.
 */
import { Command, Option } from 'commander';
import { providerNames } from '../activities/providers/index.ts';
import { TARGET_STATES, DEFAULT_TARGET_PAGE, MAX_TARGET_PAGE } from '../contracts/target-state.ts';
import { temporalSettings } from '../temporal/connection.ts';
import {
  TargetLookupError,
  TargetStoreError,
  listTargets,
  showTarget,
  withStateStore,
  type TargetView,
} from '../client/targets.ts';
import { CliError } from './cli-support.ts';

const out = (s: string) => process.stdout.write(`${s}\n`);

/** The library's own errors as the CLI's one line. */
async function lookup<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof TargetLookupError || err instanceof TargetStoreError) throw new CliError(err.message);
    throw err;
  }
}

/** One item, a few lines: state and why, when, the sync and its link, the last accepted payload. */
export function formatTarget(v: TargetView): string {
  const why = [v.code, v.message].filter((x) => x !== undefined).join(': ');
  return [
    `${v.provider} ${v.identity}: ${v.state}${why ? ` (${why})` : ''}`,
    `  when:     ${v.at}`,
    `  sync:     ${v.syncId}`,
    `  in the UI: ${v.syncUrl}`,
    `  last accepted: ${v.acceptedAt !== undefined ? `${v.acceptedAt} (content ${v.acceptedHash ?? '?'})` : 'never'}`,
    `  account:  ${v.account}${v.caller !== undefined ? `, caller ${v.caller}` : ''}`,
    ...(v.retryable === true ? ['  carried forward: by the next run of the schedule that sent it'] : []),
    ...(v.tooLargeToCarry !== undefined
      ? [`  not carried forward: its target is ${v.tooLargeToCarry} bytes, over the store's cap`]
      : []),
  ].join('\n');
}

export function targetCommand(): Command {
  const target = new Command('target').description(
    'where products stand: the last answer for each item, from the target-state store (CATALOG_SYNC_STATE_URL)',
  );
  const provider = () =>
    new Option('--provider <name>', `the provider (${providerNames().join(', ')})`).makeOptionMandatory();

  target
    .command('show <identity>')
    .description("an item's last state, code, message, when, and the sync with its Temporal UI link")
    .addOption(provider())
    .option('--json', 'print JSON on stdout and nothing else')
    .action(async (identity: string, o: { provider: string; json?: boolean }) => {
      const views = await lookup(() =>
        withStateStore(process.env, (store) =>
          showTarget(store, temporalSettings(process.env), { provider: o.provider, identity }),
        ),
      );
      if (views.length === 0) {
        throw new CliError(
          `no answer recorded for ${o.provider} item "${identity}": check the identity (item_id:locale for Insider, ` +
            'uuid:<uuid> or url:<url> for Octogen), or it was never sent since the store began',
        );
      }
      if (o.json) out(JSON.stringify(views.length === 1 ? views[0] : views, null, 2));
      else out(views.map(formatTarget).join('\n'));
    });

  target
    .command('list')
    .description('page through a provider\u2019s items, optionally in one state')
    .addOption(provider())
    .addOption(new Option('--state <state>', 'only items in this state').choices([...TARGET_STATES]))
    .option('--limit <n>', `items per page (1 to ${MAX_TARGET_PAGE})`, String(DEFAULT_TARGET_PAGE))
    .option('--after <cursor>', 'the cursor the page before printed')
    .option('--json', 'print JSON ({ items, next }) on stdout and nothing else')
    .action(async (o: { provider: string; state?: string; limit: string; after?: string; json?: boolean }) => {
      const page = await lookup(() =>
        withStateStore(process.env, (store) =>
          listTargets(store, temporalSettings(process.env), {
            provider: o.provider,
            state: o.state,
            limit: o.limit,
            after: o.after,
          }),
        ),
      );
      if (o.json) {
        out(JSON.stringify(page, null, 2));
        return;
      }
      if (page.items.length === 0) out(`no ${o.state ?? ''}${o.state ? ' ' : ''}items of ${o.provider}`);
      for (const v of page.items) {
        const why = [v.code, v.message].filter((x) => x !== undefined).join(': ');
        out(`${v.identity}\t${v.state}\t${v.at}\t${v.syncId}${why ? `\t${why}` : ''}`);
      }
      if (page.next !== undefined) {
        const again = ['catalog-sync target list', `--provider ${o.provider}`];
        if (o.state) again.push(`--state ${o.state}`);
        if (o.limit !== String(DEFAULT_TARGET_PAGE)) again.push(`--limit ${o.limit}`);
        out(`more: ${again.join(' ')} --after ${page.next}`);
      }
    });
  return target;
}
