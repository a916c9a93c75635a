/**
 * A dry run: what a sync would send, with zero provider calls and nothing started. The request is
 * checked as a real one is (client/request-check.ts), the source read page by page as the lanes
 * read it (1,000 targets a planning page; batches never cross a page), each page validated and
 * batched by the same planner the worker uses, with the provider's documented limits.
 */
import type { Dispatcher } from 'undici';
import { unchangedSeqs } from '../activities/diff.ts';
import { governorAccount } from '../activities/governor.ts';
import { planTargets, type SequencedTarget } from '../activities/plan.ts';
import type { AnyProviderAdapter } from '../activities/providers/adapter.ts';
import { providerAdapter } from '../activities/providers/index.ts';
import { refuseSourceUrl, sourceDispatcher } from '../activities/source-policy.ts';
import { readSlice, scanRef } from '../activities/sources.ts';
import { openStateStore } from '../activities/state/index.ts';
import type { TargetStateStore } from '../contracts/target-state.ts';
import { temporalSettings } from '../temporal/connection.ts';
import { targetId, type SliceRef, type SyncRequest, type TargetsRef } from '../contracts/index.ts';
import { SyncRequestError, checkSyncRequest } from './request-check.ts';

/** Targets a planning page holds: the worker plans (and batches) a source one such page at a time. */
const PLANNING_PAGE = 1000;
const pageSizeOf = (req: SyncRequest): number => Math.min(PLANNING_PAGE, req.options?.sliceSize ?? PLANNING_PAGE);
/** Rejections a dry run lists (all are counted). */
const LISTED_REJECTIONS = 100;

export interface DryRunPlan {
  dryRun: true;
  provider: string;
  /** Targets in the request or source. */
  targets: number;
  /** Targets that pass validation: what a real run would send (less `unchanged`, with `changedOnly`). */
  wouldSend: number;
  /**
   * With `changedOnly` and the target-state store at hand: valid targets whose content equals their
   * item's last accepted one, which a real run would not send (in no call).
   */
  unchanged?: number;
  /** With `changedOnly`, why nothing could be compared (every valid target is counted as sent). */
  unchangedUnknown?: string;
  /** Targets a real run would reject before sending (malformed, too large, duplicates). */
  rejected: number;
  /** The first LISTED_REJECTIONS of them, each naming its target and the fix. */
  rejections: { id: string; line?: number; code: string; message: string }[];
  /** Provider calls a real run would make (before any learned limit lowers the batch size). */
  calls: number;
  /** Bytes of the targets' JSON in all calls, and in the largest one. */
  bytes: number;
  largestCallBytes: number;
  /** The limits applied, and how many calls each one closed. */
  limits: { batchSize: number; maxTargets: number; maxBytes?: number };
  cutBy: { targets: number; bytes: number; pageOrGroupEnd: number };
  /** Always 0: a dry run never calls the provider. */
  providerCalls: 0;
}

export interface DryRunOptions {
  /** Where URL sources are allowed from (CATALOG_SYNC_SOURCE_URLS). Default: process.env. */
  env?: NodeJS.ProcessEnv;
  dispatcher?: Dispatcher;
}

const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v), 'utf8');

/** What the sync of `request` would send, read and planned here; nothing is started or called. */
export async function dryRunSync(request: SyncRequest, opts: DryRunOptions = {}): Promise<DryRunPlan> {
  const { request: req } = checkSyncRequest(request);
  const found = providerAdapter(req.provider);
  if (!found) throw new SyncRequestError(`provider: unknown provider "${req.provider}"`);
  const adapter: AnyProviderAdapter = found;
  const limits = adapter.documentedLimits;
  const batchSize = Math.min(req.options?.batchSize ?? limits.maxTargets, limits.maxTargets);
  const plan: DryRunPlan = {
    dryRun: true,
    provider: req.provider,
    targets: 0,
    wouldSend: 0,
    rejected: 0,
    rejections: [],
    calls: 0,
    bytes: 0,
    largestCallBytes: 0,
    limits: {
      batchSize,
      maxTargets: limits.maxTargets,
      ...(limits.maxBytes !== undefined ? { maxBytes: limits.maxBytes } : {}),
    },
    cutBy: { targets: 0, bytes: 0, pageOrGroupEnd: 0 },
    providerCalls: 0,
  };
  const diff = req.options?.changedOnly ? openDiff(adapter, opts.env ?? process.env) : undefined;
  if (diff && 'unknown' in diff) plan.unchangedUnknown = diff.unknown;
  else if (diff) plan.unchanged = 0;
  const reject = (r: { id: string; line?: number; code: string; message: string }) => {
    plan.rejected += 1;
    if (plan.rejections.length < LISTED_REJECTIONS) plan.rejections.push(r);
  };
  try {
    for await (const page of pagesOf(req, opts)) await planPage(page);
  } finally {
    if (diff && 'store' in diff) await diff.store.close().catch(() => undefined);
  }
  return plan;

  async function planPage(page: PageItem[]): Promise<void> {
    plan.targets += page.length;
    const valid = page.filter((i) => i.error === undefined) as (SequencedTarget & { line?: number })[];
    for (const i of page) {
      if (i.error !== undefined) {
        reject({
          id: targetId(i.seq),
          ...(i.line !== undefined ? { line: i.line } : {}),
          code: 'invalid_json',
          message: `line ${i.line} is not JSON; write one JSON target a line`,
        });
      }
    }
    const parsed = new Map<number, unknown>();
    const planned = planTargets(adapter, limits, valid, batchSize, parsed);
    const lineOf = new Map(page.map((i) => [i.seq, i.line]));
    for (const r of planned.rejections) {
      const line = lineOf.get(r.seq);
      reject({ id: targetId(r.seq), ...(line !== undefined ? { line } : {}), code: r.code, message: r.message });
    }
    let batches = planned.batches;
    if (diff && 'store' in diff) {
      const open = planned.valid.map((v) => ({ ...v, target: parsed.get(v.seq) }));
      const same = new Set(
        await unchangedSeqs(diff.store, diff.account, adapter, open).catch((err: unknown) => {
          throw new SyncRequestError(
            `the target-state store (${diff.store.where}) cannot tell which targets changed: ${(err as Error).message}`,
          );
        }),
      );
      plan.unchanged = (plan.unchanged ?? 0) + same.size;
      // Batches of the changed targets only, as a lane makes them (a lane joins up to
      // CHANGED_ONLY_PAGES pages of its share: this page-by-page count is the most it makes).
      const passed = new Set(planned.valid.map((v) => v.seq));
      const changed = valid.filter((i) => passed.has(i.seq) && !same.has(i.seq));
      batches = planTargets(adapter, limits, changed, batchSize, parsed).batches;
    }
    countCalls(
      plan,
      batches.map((b) => b.map((seq) => parsed.get(seq))),
      batchSize,
      limits.maxBytes,
    );
  }
}

/**
 * The store and account a changed-only dry run compares with: the account is the worker's (its
 * provider configuration and task queue, from the same environment), so without that
 * configuration nothing can be compared and the plan says why.
 */
function openDiff(
  adapter: AnyProviderAdapter,
  env: NodeJS.ProcessEnv,
): { store: TargetStateStore; account: string } | { unknown: string } {
  const read = adapter.configFromEnv(env);
  if ('missing' in read) {
    return {
      unknown: `not compared: ${read.missing.join(', ')} is not set here, so the provider account is unknown; set it as the worker has it`,
    };
  }
  try {
    const store = openStateStore(env);
    return { store, account: governorAccount(adapter.name, read.config, temporalSettings(env).taskQueue).hash };
  } catch (err) {
    return { unknown: `not compared: ${(err as Error).message}` };
  }
}

/** Each planned call's size, and which limit closed it. */
function countCalls(plan: DryRunPlan, calls: unknown[][], batchSize: number, maxBytes: number | undefined): void {
  for (const targets of calls) {
    const sizes = targets.map(jsonBytes);
    const bytes = sizes.reduce((a, b) => a + b + 1, 1);
    plan.calls += 1;
    plan.wouldSend += targets.length;
    plan.bytes += bytes;
    plan.largestCallBytes = Math.max(plan.largestCallBytes, bytes);
    if (targets.length >= batchSize) plan.cutBy.targets += 1;
    else if (maxBytes !== undefined && bytes + Math.max(...sizes) + 1 > maxBytes) plan.cutBy.bytes += 1;
    else plan.cutBy.pageOrGroupEnd += 1;
  }
}

type PageItem = { seq: number; line?: number; target?: unknown; error?: string };

/** The request's targets a planning page at a time: inline in order, or read from the source by byte span. */
async function* pagesOf(req: SyncRequest, opts: DryRunOptions): AsyncGenerator<PageItem[]> {
  if (req.targets !== undefined) {
    const size = pageSizeOf(req);
    for (let start = 0; start < req.targets.length; start += size) {
      yield req.targets.slice(start, start + size).map((target, i) => ({ seq: start + i, target }));
    }
    return;
  }
  const ref = req.targetsRef as TargetsRef;
  let dispatcher = opts.dispatcher;
  if ('url' in ref) {
    const env = opts.env ?? process.env;
    const refused = await refuseSourceUrl(ref.url, env);
    if (refused !== undefined) throw new SyncRequestError(refused);
    dispatcher ??= sourceDispatcher(env);
  }
  const { slices } = await scanRef(ref, pageSizeOf(req), dispatcher);
  for (const page of slices as SliceRef[]) yield await readSlice(ref, page, dispatcher);
}
