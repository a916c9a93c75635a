/**
 * The sync's activities, built by a factory so the worker passes its environment and tests pass
 * an undici dispatcher. Credentials are read here, in the worker, and never cross into workflows.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import type { Dispatcher } from 'undici';
import {
  FailureType,
  batchRejectionCode,
  providerFailureOutcome,
  type ProviderFailureDetails,
} from '../contracts/errors.ts';
import {
  targetId,
  packPages,
  toRanges,
  type BatchRef,
  type PackedPages,
  type SliceRef,
  type TargetSource,
  type TargetsRef,
} from '../contracts/index.ts';
import { boundedIdentity, planTargets, type Plan, type SequencedTarget } from './plan.ts';
import { readSlice, scanRef } from './sources.ts';
import { echoKnownFields } from './echo.ts';
import { SOURCE_URLS_VAR, judgeSourceUrl, shownUrl, sourceDispatcher } from './source-policy.ts';
import { opener, releaseSpool } from './spool.ts';
import type { AnyProviderAdapter, BatchAnswer, BatchLimits } from './providers/adapter.ts';
import { providerAdapter, providerNames } from './providers/index.ts';
import { answeredItems, createLaneActivity, type CallCap, type ItemOutcome } from './lane.ts';
import { openStateStore, stateStoreConfigured, type TargetStateStore } from './state/index.ts';
import { groupCommit } from './state/group-commit.ts';
import { acceptedHash, unchangedSeqs } from './diff.ts';
import { MAX_CARRIED_TARGET_BYTES, type CarryCursor, type TargetOutcomeRecord } from '../contracts/target-state.ts';
import { noneCarried, type CarriedCounts } from '../contracts/sync.ts';
import { answerWithinBudget } from './answer-budget.ts';

export { answerWithinBudget } from './answer-budget.ts';
import { callBytes, governorAccount, planCall, probeHolder, type CallPlan, type Governor } from './governor.ts';
import type { GovernorReport } from '../contracts/governor.ts';

export type { Plan, PlannedRejection, SequencedTarget } from './plan.ts';
export type { BatchAnswer, TargetOutcome } from './providers/adapter.ts';

const HEARTBEAT_EVERY_MS = 1_000;

export interface ActivityDeps {
  /** Where provider configuration and credentials come from; the worker passes process.env. */
  env: NodeJS.ProcessEnv;
  /** Tests inject one (a MockAgent or a pool with small timeouts); production uses undici's global. */
  dispatcher?: Dispatcher;
  /** Per-request timeout for provider calls, in milliseconds. */
  requestTimeoutMs?: number;
  /**
   * What URL sources are read through; by default an agent that refuses internal addresses at
   * connect time (source-policy.ts). Provider calls never use it.
   */
  sourceDispatcher?: Dispatcher;
  /**
   * The provider-account governor (activities/governor.ts) and the task queue its workflows run
   * on; the worker builds one from its client. Without it, every batch goes as one call.
   */
  governor?: { governor: Governor; taskQueue: string };
  /**
   * The target-state store answers are recorded in; by default the one CATALOG_SYNC_STATE_URL
   * names (activities/state/), opened on first use.
   */
  stateStore?: TargetStateStore;
  /**
   * The HTTP front's caller a sync was started for (its memo's `caller`), recorded with its items
   * so one caller never sees another's; the worker asks Temporal. Without it, items have no caller.
   */
  syncCaller?: (syncId: string) => Promise<string | undefined>;
}

/** A slice's (or a slice part's) workflow ID names its sync: `<sync>/slice-<n>[-part-<m>]`. */
export const syncIdOf = (workflowId: string): string => workflowId.replace(/\/slice-\d+(-part-\d+)?$/, '');

export interface PlanInput {
  provider: string;
  targets: SequencedTarget[];
  batchSize?: number;
}

export interface ScanInput {
  ref: TargetsRef;
  sliceSize: number;
}

export interface PlanSliceInput {
  provider: string;
  /** The slice's own targets when inline (seq from slice.firstSeq), or the reference to read. */
  source: TargetSource;
  slice: SliceRef;
  batchSize?: number;
  /** Send only what changed: targets whose content equals their last accepted one come back in `unchanged`. */
  changedOnly?: boolean;
}

export interface SliceRejection {
  seq: number;
  /** The provider's identity of the item, when the target parsed (a duplicate). */
  identity?: string;
  line?: number;
  code: string;
  message: string;
  target?: unknown;
}

export interface SlicePlan {
  rejections: SliceRejection[];
  /** Each batch as ranges of sequence numbers [from, to). */
  batches: [number, number][][];
  /** With `changedOnly`: the targets found unchanged (in no batch), by sequence number. */
  unchanged?: number[];
}

export interface CarryInput {
  provider: string;
  /** The schedule's runs' workflow ID prefix with its dash: only items its runs left are carried. */
  runsPrefix: string;
  /** The run's own syncs: items they answered are settled by this run, never carried by it. */
  excludeSyncs: string[];
  /** Only items answered before this time (ms): the run's start. */
  before: number;
  /** Every rejection too (the schedule's `carryRejected`), not only transient ones and failures. */
  includeRejected: boolean;
  /** At most this many bytes of targets (as JSON) and this many targets. */
  maxBytes: number;
  maxTargets: number;
}

export interface CarryFound {
  /** The targets to send again, as last sent: inline, so within `maxBytes`. */
  targets: unknown[];
  counts: CarriedCounts;
  /** True when the worker has no target-state store: nothing is recorded, so nothing can be carried. */
  noStore?: true;
}

/** Rows read from the store a query, while looking for the items to carry. */
const CARRY_PAGE = 500;

export interface ReleaseSourceInput {
  ref: TargetsRef;
}

export interface SendBatchInput {
  provider: string;
  /** The batch's number in the sync, for activity summaries and the report. */
  batch: number;
  /** The slice the batch belongs to, when the sync fans out: named in heartbeat details. */
  slice?: number;
  targets: BatchRef;
}

/** Echoes of targets in results stay small: history carries cursors and counts, not catalogs. */
const ECHO_LIMIT = 1024;
const MESSAGE_LIMIT = 300;
/** A caller's own inline target, echoed back whole while it is small. */
const echo = (target: unknown): unknown | undefined => {
  const json = JSON.stringify(target);
  return json !== undefined && json.length <= ECHO_LIMIT ? target : undefined;
};
/**
 * A target read from a source line: only the provider's known fields, cut short. A source may be
 * any file or document the worker can read; nothing else of a line ever reaches a report.
 */
const echoFromSource = (adapter: AnyProviderAdapter, target: unknown): unknown | undefined =>
  echoKnownFields(adapter, target, ECHO_LIMIT);
const clip = (message: string): string =>
  message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT - 3)}...` : message;

/** Results stay well under Temporal's payload limit: past this, rejections drop echoes and detail. */
const RESULT_BUDGET = 200 * 1024;
function withinBudget(rejections: SliceRejection[]): SliceRejection[] {
  if (Buffer.byteLength(JSON.stringify(rejections), 'utf8') <= RESULT_BUDGET) return rejections;
  return rejections.map(({ seq, identity, line, code, message }) => ({
    seq,
    ...(identity !== undefined ? { identity } : {}),
    ...(line !== undefined ? { line } : {}),
    code,
    message: message.slice(0, 100),
  }));
}

const inRanges = (ranges: [number, number][]) => {
  const set = new Set<number>();
  for (const [from, to] of ranges) for (let s = from; s < to; s += 1) set.add(s);
  return set;
};

/**
 * The workflow knows no provider's codes or identities: each rejection is marked here with whether
 * it is transient, its identity, and (read from a source: `lines` given) its echo and line; a
 * target accepted with a warning gets its identity and line too.
 */
function markOutcomes(
  adapter: AnyProviderAdapter,
  targets: unknown[],
  answer: BatchAnswer,
  lines: (number | undefined)[] | undefined,
): void {
  const transient = new Set(adapter.transientRejectionCodes);
  answer.outcomes.forEach((o, i) => {
    const target = targets[i];
    if (o.state === 'accepted') {
      // A warned target names its item too (Insider's document_ids), and its line when read from a source.
      if (o.warning === undefined || target === undefined) return;
      o.identity = boundedIdentity(adapter, target);
      const line = lines?.[i];
      if (line !== undefined) o.line = line;
      return;
    }
    if (transient.has(o.code)) o.transient = true;
    o.message = clip(o.message);
    if (target === undefined) return;
    o.identity = boundedIdentity(adapter, target);
    if (lines === undefined) return;
    const e = echoFromSource(adapter, target);
    if (e !== undefined) o.target = e;
    const line = lines[i];
    if (line !== undefined) o.line = line;
  });
}

function adapterOrFail(provider: string): AnyProviderAdapter {
  const adapter = providerAdapter(provider);
  if (!adapter) {
    throw ApplicationFailure.create({
      type: FailureType.ProviderNotConfigured,
      nonRetryable: true,
      message: `unknown provider "${provider}"; use one of: ${providerNames().join(', ')}`,
    });
  }
  return adapter;
}

export function createActivities(deps: ActivityDeps) {
  const timeoutMs = deps.requestTimeoutMs ?? 30_000;
  const configs = new Map<string, unknown>();
  let guarded: Dispatcher | undefined;
  const openLine = opener(deps.env);
  let store: TargetStateStore | undefined = deps.stateStore;
  /** The store's writes, grouped: the answers of one turn of the event loop in one transaction. */
  let commit: ((records: readonly TargetOutcomeRecord[]) => Promise<void>) | undefined;
  const callers = new Map<string, string | undefined>();

  /** A store that cannot take an answer fails the attempt, in one line naming the store (never its password). */
  const storeFailure = (where: string, err: unknown, what = "record the provider's answer"): ApplicationFailure =>
    ApplicationFailure.create({
      type: FailureType.StateStoreUnavailable,
      message: `the target-state store (${where}) cannot ${what}: ${clip((err as Error).message ?? String(err))}`,
    });

  /**
   * Of `items` (valid, parsed targets with their bounded identities), the sequence numbers whose
   * diff content hashes to the last accepted one of their item (`changedOnly`). One query a call.
   * A store that cannot answer fails the attempt (Temporal retries it): nothing is ever sent or
   * skipped on a guess.
   */
  async function findUnchanged(
    adapter: AnyProviderAdapter,
    config: unknown,
    items: readonly { seq: number; identity: string; target: unknown }[],
  ): Promise<number[]> {
    if (items.length === 0) return [];
    if (deps.stateStore === undefined && !stateStoreConfigured(deps.env)) {
      // Nothing is recorded without a store, so nothing could ever be found unchanged: say so.
      throw ApplicationFailure.create({
        type: FailureType.InvalidSyncRequest,
        nonRetryable: true,
        message:
          'changedOnly needs the target-state store, which these workers have off (CATALOG_SYNC_STATE_URL=off): unset it (the embedded SQLite file) or set postgres://..., or sync without changedOnly',
      });
    }
    let where = 'not opened';
    try {
      store ??= openStateStore(deps.env, { threaded: true });
      where = store.where;
      const account = governorAccount(adapter.name, config, deps.governor?.taskQueue ?? '').hash;
      // This sync's own acceptances are not "unchanged": a retried run sends those targets again.
      const syncId = syncIdOf(Context.current().info.workflowExecution?.workflowId ?? 'activity');
      return await unchangedSeqs(store, account, adapter, items, syncId);
    } catch (err) {
      throw storeFailure(store?.where ?? where, err, 'tell which targets changed');
    }
  }

  /**
   * Records each item's outcome under its account and bounded identity, after the provider answered
   * and before the activity returns: a failure here fails the attempt, and Temporal retries it.
   */
  async function recordOutcomes(
    adapter: AnyProviderAdapter,
    config: unknown,
    call: string,
    items: readonly ItemOutcome[],
  ): Promise<void> {
    // On unless CATALOG_SYNC_STATE_URL=off (or the worker was given a store).
    if (items.length === 0 || (deps.stateStore === undefined && !stateStoreConfigured(deps.env))) return;
    const ctx = Context.current();
    const workflowId = ctx.info.workflowExecution?.workflowId ?? 'activity';
    const syncId = syncIdOf(workflowId);
    let where = 'not opened';
    try {
      store ??= openStateStore(deps.env, { threaded: true });
      where = store.where;
      let caller: string | undefined;
      if (deps.syncCaller) {
        if (!callers.has(syncId)) {
          if (callers.size >= 1_000) callers.delete(callers.keys().next().value as string);
          callers.set(syncId, await deps.syncCaller(syncId));
        }
        caller = callers.get(syncId);
      }
      const account = governorAccount(adapter.name, config, deps.governor?.taskQueue ?? '').hash;
      const at = Date.now();
      const transient = new Set(adapter.transientRejectionCodes);
      const records: TargetOutcomeRecord[] = [];
      for (const item of items) {
        if (item.target === undefined) continue;
        // A rejected or failed item keeps its target as sent (capped), for a schedule to carry forward.
        let carry: Pick<TargetOutcomeRecord, 'retryable' | 'target' | 'targetBytes'> = {};
        if (item.state !== 'accepted') {
          const json = JSON.stringify(item.target);
          const bytes = Buffer.byteLength(json, 'utf8');
          carry = {
            retryable: item.state === 'failed' || (item.code !== undefined && transient.has(item.code)),
            targetBytes: bytes,
            ...(bytes <= MAX_CARRIED_TARGET_BYTES ? { target: json } : {}),
          };
        }
        records.push({
          ...carry,
          provider: adapter.name,
          account,
          identity: boundedIdentity(adapter, item.target),
          state: item.state,
          ...(item.code !== undefined ? { code: item.code } : {}),
          ...(item.message !== undefined ? { message: clip(item.message) } : {}),
          ...(item.state === 'accepted' ? { contentHash: acceptedHash(adapter, item.target) } : {}),
          syncId,
          batch: call,
          ...(caller !== undefined ? { caller } : {}),
          at,
        });
      }
      const opened = store;
      commit ??= groupCommit((group) => opened.record(group));
      await commit(records);
    } catch (err) {
      throw storeFailure(store?.where ?? where, err);
    }
  }

  /**
   * The dispatcher a source is read through, once the reference passed the policy: a URL must be
   * under CATALOG_SYNC_SOURCE_URLS (checked here too, whoever started the sync), and its addresses
   * are checked again at connect time. Files are the operator's (CLI, library, spool).
   */
  function readerFor(ref: TargetsRef): Dispatcher | undefined {
    if ('file' in ref) return undefined;
    let refused: string | undefined;
    try {
      refused = judgeSourceUrl(ref.url, deps.env).refused;
    } catch (err) {
      refused = (err as Error).message;
    }
    if (refused !== undefined) {
      throw ApplicationFailure.create({
        type: FailureType.InvalidSyncRequest,
        nonRetryable: true,
        message: refused.includes(SOURCE_URLS_VAR)
          ? `the worker refuses to read ${refused}`
          : `the worker refuses to read ${refused} (${SOURCE_URLS_VAR})`,
      });
    }
    guarded ??= deps.sourceDispatcher ?? sourceDispatcher(deps.env);
    return guarded;
  }

  /** A read that failed: refused at connect time or undecryptable is final; the rest is retried. */
  function readFailure(ref: TargetsRef, err: unknown): ApplicationFailure {
    if (err instanceof ApplicationFailure) return err;
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code;
    const final = code === 'ENOENT' || code === 'ESOURCEREFUSED' || e.name === 'SpoolError';
    return ApplicationFailure.create({
      type: FailureType.InvalidSyncRequest,
      nonRetryable: final,
      message: `cannot read the targets at ${'file' in ref ? ref.file : shownUrl(ref.url)}: ${e.cause?.code === 'ESOURCEREFUSED' ? e.cause.message : e.message}`,
      cause: e,
    });
  }

  function configFor(adapter: AnyProviderAdapter): unknown {
    if (configs.has(adapter.name)) return configs.get(adapter.name);
    const read = adapter.configFromEnv(deps.env);
    if ('missing' in read) {
      throw ApplicationFailure.create({
        type: FailureType.ProviderNotConfigured,
        message: `the worker has no ${adapter.title} configuration: ${read.missing.join(', ')} is not set; ${read.hint}`,
        details: [
          {
            provider: adapter.name,
            message: `missing ${read.missing.join(', ')}`,
          },
        ],
      });
    }
    configs.set(adapter.name, read.config);
    return read.config;
  }

  /** The slice's targets, parsed, with the lines that are not JSON kept as errors. */
  async function sliceItems(source: TargetSource, slice: SliceRef) {
    if (source.kind === 'inline') {
      return source.targets.map((target, i) => ({
        seq: slice.firstSeq + i,
        target,
        line: undefined,
        error: undefined,
      }));
    }
    try {
      return await readSlice(source.ref, slice, readerFor(source.ref), openLine);
    } catch (err) {
      throw readFailure(source.ref, err);
    }
  }

  /**
   * The adapter's batch limits, lowered to what the account's governor learned, so batches planned
   * after an oversize answer go as one call each (and the queue's rate limit counts them right).
   */
  async function plannedLimits(adapter: AnyProviderAdapter, config: unknown): Promise<BatchLimits> {
    const limits = adapter.limits(config);
    const gov = deps.governor;
    if (!gov) return limits;
    const adv = await gov.governor.advice(governorAccount(adapter.name, config, gov.taskQueue)).catch(() => undefined);
    if (adv === undefined) return limits;
    const learned =
      adv.tooLargeRecords === undefined
        ? undefined
        : Math.max(1, adv.okRecords > 0 ? adv.okRecords : (adv.probeRecords ?? adv.tooLargeRecords - 1));
    return {
      ...limits,
      ...(learned !== undefined ? { maxTargets: Math.min(limits.maxTargets, learned) } : {}),
      ...(adv.maxBytes !== undefined ? { maxBytes: Math.min(limits.maxBytes ?? Infinity, adv.maxBytes) } : {}),
    };
  }

  /** One provider call, counted and logged. */
  async function callOnce(adapter: AnyProviderAdapter, config: unknown, targets: unknown[], batch: number) {
    const ctx = Context.current();
    const calls = ctx.metricMeter.createCounter(
      'catalog_sync_provider_calls',
      'calls',
      'Provider calls by provider and HTTP status ("network" when no answer came)',
    );
    let answer: BatchAnswer;
    try {
      answer = await adapter.send(targets, {
        config,
        dispatcher: deps.dispatcher,
        timeoutMs,
        signal: ctx.cancellationSignal,
      });
    } catch (err) {
      const status = ((err as ApplicationFailure).details?.[0] as ProviderFailureDetails | undefined)?.httpStatus;
      calls.add(1, { provider: adapter.name, status: status !== undefined ? String(status) : 'network' });
      ctx.log.warn('provider call failed', { provider: adapter.name, batch, error: (err as Error).message });
      throw err;
    }
    calls.add(1, { provider: adapter.name, status: String(answer.httpStatus) });
    ctx.log.info('provider answered', {
      provider: adapter.name,
      batch,
      httpStatus: answer.httpStatus,
      targets: targets.length,
      ...(answer.requestId !== undefined ? { requestId: answer.requestId } : {}),
    });
    return answer;
  }

  /**
   * Sends a batch as one call, or, when the account's governor learned a smaller working size, as
   * several calls of that size back to back (one outcome per target all the same). Before every call
   * it waits out the account's pause; it reports oversize and rate answers to the governor, and a
   * too-large part is sent again smaller within the activity.
   */
  async function sendGoverned(
    adapter: AnyProviderAdapter,
    config: unknown,
    targets: unknown[],
    batch: number,
    beat: () => void,
    cap: CallCap = {},
  ): Promise<BatchAnswer> {
    const maxCalls = cap.maxCalls ?? Infinity;
    const gov = deps.governor;
    if (!gov) {
      cap.onCall?.();
      return callOnce(adapter, config, targets, batch);
    }
    const ctx = Context.current();
    const account = governorAccount(adapter.name, config, gov.taskQueue);
    const holder = probeHolder(
      `${ctx.info.workflowExecution?.workflowId ?? 'activity'}/${ctx.info.activityId}/${ctx.info.attempt}`,
    );
    let measured: number[] | undefined;
    const sizes = () => (measured ??= targets.map((t) => Buffer.byteLength(JSON.stringify(t), 'utf8')));
    const outcomes: BatchAnswer['outcomes'] = [];
    let last: BatchAnswer | undefined;
    let rateRetries = 0;
    let tooLargeAt = Infinity;
    let made = 0;
    while (outcomes.length < targets.length) {
      const done = outcomes.length;
      // A provider with a declared budget gets one call per activity: the queue's rate limit counts dispatches.
      if (made >= maxCalls) return { ...(last ?? { httpStatus: 0 }), outcomes, unsent: targets.length - done };
      let plan: CallPlan;
      try {
        const remaining = { count: targets.length - done, sizes: () => sizes().slice(done) };
        plan = await planCall(gov.governor, account, remaining, holder, (ms) => ctx.sleep(ms));
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw err;
        ctx.log.warn('governor unavailable; calling without it', { error: (err as Error).message });
        plan = { records: targets.length - done };
      }
      // Whatever the governor says, a part never goes again at a size just found too large.
      if (plan.records >= tooLargeAt) plan = { records: Math.max(1, Math.ceil(tooLargeAt / 2) - 1) };
      const part = targets.slice(done, done + plan.records);
      const report = (r: GovernorReport) =>
        gov.governor.report(account, plan.holder !== undefined ? { ...r, holder: plan.holder } : r);
      const records = part.length;
      const bytes = () => callBytes(sizes().slice(done), records);
      try {
        made += 1;
        cap.onCall?.();
        last = await callOnce(adapter, config, part, batch);
        outcomes.push(...last.outcomes.slice(0, records));
        beat();
        const adv = await gov.governor.advice(account).catch(() => undefined);
        if (adv && (plan.holder !== undefined || records > adv.okRecords || (adv.rateStreak ?? 0) > 0)) {
          await report({ kind: 'ok', records, bytes: bytes() }).catch(() => undefined);
        }
        continue;
      } catch (err) {
        const failure = err instanceof ApplicationFailure ? err : undefined;
        const details = failure?.details?.[0] as ProviderFailureDetails | undefined;
        if (failure?.type === FailureType.ProviderBatchTooLarge) {
          const told = await report({ kind: 'oversize', records, bytes: bytes() }).then(
            () => true,
            () => false,
          );
          // Without the governor, the workflow's split is the fallback.
          if (!told || targets.length === 1) throw err;
          tooLargeAt = records;
          if (records === 1) {
            outcomes.push({ state: 'rejected', code: details?.code ?? 'request_too_large', message: failure.message });
            tooLargeAt = Infinity;
          }
          continue;
        }
        if (failure?.type === FailureType.ProviderRateLimited) {
          const delay = failure.nextRetryDelay;
          const wait = delay === undefined || delay === null ? undefined : msToNumber(delay);
          await report({ kind: 'rate', ...(wait !== undefined ? { until: Date.now() + wait } : {}) }).catch(
            () => undefined,
          );
          // Parts already answered are kept: the rest waits out the pause here rather than resend them.
          if (done > 0 && rateRetries < 5) {
            rateRetries += 1;
            continue;
          }
        } else if (plan.holder !== undefined) {
          await gov.governor.report(account, { kind: 'released', holder: plan.holder }).catch(() => undefined);
        }
        throw err;
      }
    }
    return { ...(last ?? { httpStatus: 400 }), outcomes };
  }

  const sendLane = createLaneActivity({
    adapter: adapterOrFail,
    config: configFor,
    readPage: (ref, page) => sliceItems({ kind: 'ref', ref }, page),
    limits: plannedLimits,
    send: sendGoverned,
    mark: markOutcomes,
    echo: (adapter, target) => echoFromSource(adapter, target),
    clip,
    record: recordOutcomes,
    unchanged: findUnchanged,
  });

  /**
   * The items a schedule's run carries forward (docs/state.md, "Failures carried forward"): of this
   * worker's account of the provider, those whose last answer was a transient rejection or a failure
   * (or any rejection, with `includeRejected`), answered before the run began by a sync other than
   * the run's own, oldest answer first, as many as fit the run's budget. A store that cannot answer
   * fails the attempt in one line naming it.
   */
  async function carriedTargets(input: CarryInput): Promise<CarryFound> {
    const counts = noneCarried();
    if (deps.stateStore === undefined && !stateStoreConfigured(deps.env)) return { targets: [], counts, noStore: true };
    const adapter = adapterOrFail(input.provider);
    const config = configFor(adapter);
    let where = 'not opened';
    try {
      store ??= openStateStore(deps.env, { threaded: true });
      where = store.where;
      const account = governorAccount(adapter.name, config, deps.governor?.taskQueue ?? '').hash;
      const transient = new Set(adapter.transientRejectionCodes);
      const targets: unknown[] = [];
      let bytes = 2;
      let total = 0;
      let after: CarryCursor | undefined;
      for (let first = true; ; first = false) {
        const page = await store.carryable({
          provider: adapter.name,
          account,
          includeRejected: input.includeRejected,
          runsPrefix: input.runsPrefix,
          excludeSyncs: input.excludeSyncs,
          before: input.before,
          limit: CARRY_PAGE,
          ...(after !== undefined ? { after } : {}),
          ...(first ? { count: true } : {}),
        });
        if (first) {
          total = page.total ?? 0;
          counts.tooLarge = page.tooLarge ?? 0;
        }
        let full = false;
        for (const row of page.items) {
          if (row.target === undefined) continue;
          const size = Buffer.byteLength(row.target, 'utf8') + 1;
          if (targets.length >= input.maxTargets || bytes + size > input.maxBytes) {
            full = true;
            break;
          }
          targets.push(JSON.parse(row.target) as unknown);
          bytes += size;
          if (row.state === 'failed') counts.failed += 1;
          else if (row.retryable || (row.code !== undefined && transient.has(row.code))) counts.transient += 1;
          else counts.rejected += 1;
        }
        if (full || page.next === undefined) break;
        after = page.next;
      }
      counts.count = targets.length;
      counts.left = Math.max(0, total - targets.length);
      return { targets, counts };
    } catch (err) {
      throw storeFailure(store?.where ?? where, err, 'tell which items to carry forward');
    }
  }

  return {
    sendLane,
    carriedTargets,

    async planTargets(input: PlanInput): Promise<Plan> {
      const adapter = adapterOrFail(input.provider);
      // Fails before any call when this worker cannot reach the provider at all.
      const config = configFor(adapter);
      return planTargets(adapter, await plannedLimits(adapter, config), input.targets, input.batchSize);
    },

    /** The source's pages, packed: 10 million targets are about 70 KB (a list of pages would be 800 KB). */
    async scanSource(input: ScanInput): Promise<{ total: number; pages: PackedPages }> {
      const dispatcher = readerFor(input.ref);
      try {
        const { total, slices } = await scanRef(input.ref, input.sliceSize, dispatcher);
        return { total, pages: packPages(slices, input.sliceSize) };
      } catch (err) {
        throw readFailure(input.ref, err);
      }
    },

    async planSlice(input: PlanSliceInput): Promise<SlicePlan> {
      const adapter = adapterOrFail(input.provider);
      const config = configFor(adapter);
      const items = await sliceItems(input.source, input.slice);
      const lines = new Map(items.map((i) => [i.seq, i.line]));
      const rejections: SliceRejection[] = [];
      for (const item of items) {
        if (item.error !== undefined) {
          rejections.push({
            seq: item.seq,
            ...(item.line !== undefined ? { line: item.line } : {}),
            code: 'invalid_json',
            // The reason only: a parser's message would quote the line, and a line may hold anything.
            message: `line ${item.line} is not JSON; write one JSON target a line`,
          });
        }
      }
      const parsed = items
        .filter((i) => i.error === undefined)
        .map((i) => ({
          seq: i.seq,
          target: i.target,
          label: i.line !== undefined ? `line ${i.line}` : targetId(i.seq),
        }));
      const typed = new Map<number, unknown>();
      const plan = planTargets(adapter, await plannedLimits(adapter, config), parsed, input.batchSize, typed);
      const unchanged = input.changedOnly
        ? await findUnchanged(
            adapter,
            config,
            plan.valid.map((v) => ({ ...v, target: typed.get(v.seq) })),
          )
        : [];
      const same = new Set(unchanged);
      const batches =
        same.size === 0
          ? plan.batches
          : plan.batches.map((b) => b.filter((s) => !same.has(s))).filter((b) => b.length > 0);
      const targets = new Map(parsed.map((p) => [p.seq, p.target]));
      for (const r of plan.rejections) {
        const line = lines.get(r.seq);
        const target =
          input.source.kind === 'ref' ? echoFromSource(adapter, targets.get(r.seq)) : echo(targets.get(r.seq));
        rejections.push({
          seq: r.seq,
          ...(r.identity !== undefined ? { identity: r.identity } : {}),
          ...(line !== undefined ? { line } : {}),
          code: r.code,
          message: clip(r.message),
          ...(target !== undefined ? { target } : {}),
        });
      }
      rejections.sort((a, b) => a.seq - b.seq);
      return {
        rejections: withinBudget(rejections),
        batches: batches.map((b) => toRanges(b)),
        ...(input.changedOnly ? { unchanged } : {}),
      };
    },

    /** Deletes the sync's spooled file once it has closed (only ever a spool file: spool.ts). */
    async releaseSource(input: ReleaseSourceInput): Promise<{ released: boolean }> {
      return { released: await releaseSpool(input.ref) };
    },

    async sendBatch(input: SendBatchInput): Promise<BatchAnswer> {
      const adapter = adapterOrFail(input.provider);
      const config = configFor(adapter);
      let raw: unknown[];
      let lines: (number | undefined)[] = [];
      if (input.targets.kind === 'inline') {
        raw = input.targets.targets;
      } else {
        const wanted = inRanges(input.targets.seqs);
        const items = (await sliceItems({ kind: 'ref', ref: input.targets.ref }, input.targets.slice)).filter((i) =>
          wanted.has(i.seq),
        );
        raw = items.map((i) => i.target);
        lines = items.map((i) => i.line);
      }
      // Targets were validated when planned; parse again so the adapter gets its typed form.
      const targets = raw.map((t) => adapter.targetSchema.parse(t));
      const ctx = Context.current();
      // Heartbeats let Temporal notice a dead worker within the heartbeat timeout, not the call's.
      // Their details name the batch in hand, so a pending activity says what it is sending.
      const inHand = {
        batch: input.batch,
        targets: targets.length,
        ...(input.slice !== undefined ? { slice: input.slice } : {}),
      };
      ctx.heartbeat(inHand);
      const heartbeat = setInterval(() => ctx.heartbeat(inHand), HEARTBEAT_EVERY_MS);
      const call = `${ctx.info.workflowExecution?.workflowId ?? 'activity'}#${ctx.info.activityId}#${input.batch}`;
      let answer: BatchAnswer;
      try {
        answer = await sendGoverned(adapter, config, targets, input.batch, () => ctx.heartbeat(inHand), {
          maxCalls: adapter.budget?.(config) !== undefined ? 1 : Infinity,
        });
        // Recorded before the activity returns: a store that cannot take it fails the attempt.
        await recordOutcomes(adapter, config, call, answeredItems(targets, answer));
      } catch (err) {
        // A caller error rejects the whole batch for good: that answer is recorded too (the rest is retried).
        const failure = err instanceof ApplicationFailure ? err : undefined;
        const type = failure?.type ?? undefined;
        if (failure && type && providerFailureOutcome(type, targets.length) === 'reject') {
          const details = failure.details?.[0] as ProviderFailureDetails | undefined;
          const code = batchRejectionCode(type, details);
          await recordOutcomes(
            adapter,
            config,
            call,
            targets.map((target) => ({ target, state: 'rejected', code, message: failure.message })),
          );
        }
        throw err;
      } finally {
        clearInterval(heartbeat);
      }
      markOutcomes(adapter, targets, answer, input.targets.kind === 'ref' ? lines : undefined);
      return answerWithinBudget(answer);
    },
  };
}

export type SyncActivities = ReturnType<typeof createActivities>;
