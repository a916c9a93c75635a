/**
 * The typed library other services import: start a sync, read its status, re-submit, finish,
 * and await its report, each with the caller's own Temporal Client.
 */
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { WorkflowFailedError, WorkflowNotFoundError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  FailureType,
  finishSignal,
  resubmitSignal,
  resubmitUpdate,
  statusQuery,
  type Resubmission,
  type ResubmissionAnswer,
  type ResubmissionItem,
  type SyncInput,
  type SyncReport,
  type SyncRequest,
  type TargetSource,
  type Failure,
  type Rejection,
  type Warning,
  parseTargetId,
  checkResubmission,
  rejectedElsewhereQuery,
  sliceEntriesQuery,
  sliceWarningsQuery,
  SA_KIND,
  SA_PHASE,
  SA_PROVIDER,
  syncPriority,
  type WorkflowKind,
} from '../contracts/index.ts';
import type { syncSliceWorkflow, syncWorkflow } from '../workflows/index.ts';
import { isMissingSearchAttribute, missingAttributesMessage } from './setup.ts';
import { shownUrl } from '../activities/source-policy.ts';
import { releaseSpool, spoolDir as spoolFolder, writeSpool } from '../activities/spool.ts';
import { nameItems, nameReportItems } from './item-names.ts';
import { ask } from './ask.ts';
import {
  SyncRequestError,
  checkSyncRequest,
  nothingValidMessage,
  type CheckedRequest,
  type TargetProblem,
} from './request-check.ts';

// A request the client refuses before anything is started: one line naming the field and the fix.
export { SyncRequestError } from './request-check.ts';

/**
 * The key names a sync that was started with a different request (provider, targets or their
 * reference, options): nothing is started, and the existing sync is not touched. Resend the same
 * request to get the existing sync, or use a new key for this one.
 */
export class SyncKeyConflictError extends SyncRequestError {
  override readonly name: string = 'SyncKeyConflictError';
  constructor(
    /** The key as the caller gave it. */
    readonly key: string,
    /** The sync the key already names. */
    readonly workflowId: string,
  ) {
    super(
      `key "${key}" already names sync ${workflowId}, started with a different request: ` +
        'use a new key for this request, or resend the same request to get the existing sync',
    );
  }
}

/** The memo field holding the fingerprint of the request a sync was started with. */
export const REQUEST_HASH_MEMO = 'requestHash';

/** JSON with object keys sorted at every level (arrays keep their order); `undefined` fields left out. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The fingerprint of a normalized request: sha256 of its canonical JSON (provider, the targets
 * themselves or the reference, options, and the scoped caller if any; not the key, which is the
 * workflow ID). Inline targets are hashed one by one, so a large request is never one huge string;
 * a request spooled to a file hashes the same as it did inline.
 */
export function requestFingerprint(req: SyncRequest, caller?: string): string {
  const hash = createHash('sha256');
  hash.update(canonicalJson({ v: 1, provider: req.provider, options: req.options ?? {}, caller: caller ?? null }));
  if (req.targets) {
    hash.update('\ntargets');
    for (const t of req.targets) hash.update(`\n${canonicalJson(t)}`);
  } else if (req.targetsRef) {
    const ref = 'file' in req.targetsRef ? { file: path.resolve(req.targetsRef.file) } : { url: req.targetsRef.url };
    hash.update(`\ntargetsRef\n${canonicalJson(ref)}`);
  }
  return hash.digest('hex');
}

/** Readable and idempotent: the same provider and key always name the same workflow. */
export const syncWorkflowId = (provider: string, key?: string): string =>
  `catalog-sync-${provider}-${key ?? randomUUID()}`;

export interface StartedSync {
  workflowId: string;
  /** False when a sync with this key already existed: nothing new was started. */
  started: boolean;
  /**
   * Inline targets refused at submission (position, code, reason): never sent, and reported
   * rejected by the sync too. Absent when every target passed.
   */
  rejected?: TargetProblem[];
}

/**
 * The request as checked by checkSyncRequest (client/request-check.ts), the check the CLI and the
 * HTTP front make too. Malformed inline targets start with the rest and are reported rejected,
 * never sent; when none is left to send, nothing starts.
 */
function parseRequest(request: SyncRequest): CheckedRequest {
  const checked = checkSyncRequest(request);
  const targets = checked.request.targets;
  if (targets !== undefined && checked.problems.length === targets.length) {
    throw new SyncRequestError(nothingValidMessage(checked.problems));
  }
  return checked;
}

export interface StartOptions {
  /**
   * Set the project's search attributes at start (default true; CATALOG_SYNC_SEARCH_ATTRIBUTES=off
   * turns them off for a namespace that has not registered them).
   */
  searchAttributes?: boolean;
  /** Memo to start the sync with (the HTTP front records a scoped caller here). */
  memo?: Record<string, unknown>;
}

const describeRef = (ref: SyncRequest['targetsRef']): string =>
  ref === undefined ? 'nowhere' : 'file' in ref ? ref.file : shownUrl(ref.url);

export async function startSync(
  client: Client,
  request: SyncRequest,
  taskQueue: string,
  opts: StartOptions = {},
): Promise<StartedSync> {
  const { request: req, problems } = parseRequest(request);
  const workflowId = syncWorkflowId(req.provider, req.key);
  const caller = typeof opts.memo?.caller === 'string' ? opts.memo.caller : undefined;
  const requestHash = requestFingerprint(req, caller);
  // A key names one request: answer a retry with its sync before anything is written or started.
  if (req.key !== undefined) {
    const existing = await existingSync(client, workflowId, req.key, requestHash);
    if (existing) return existing;
  }
  const input: SyncInput = {
    provider: req.provider,
    source: await sourceOf(req, workflowId),
    ...(req.options ? { options: req.options } : {}),
  };
  try {
    const targets = req.targets ? `${req.targets.length} targets` : `targets from ${describeRef(req.targetsRef)}`;
    await client.workflow.start<typeof syncWorkflow>('syncWorkflow', {
      taskQueue,
      workflowId,
      args: [input],
      // Its slices and activities inherit the priority key; provider calls carry the fairness key.
      priority: syncPriority(workflowId, req.options?.priorityKey),
      staticSummary: `${req.provider} sync of ${targets}${req.key ? ` (key ${req.key})` : ''}`,
      // Operators filter syncs by these in the UI; a namespace without them opts out.
      memo: { ...opts.memo, [REQUEST_HASH_MEMO]: requestHash },
      ...((opts.searchAttributes ?? process.env.CATALOG_SYNC_SEARCH_ATTRIBUTES !== 'off')
        ? {
            typedSearchAttributes: [
              { key: SA_PROVIDER, value: req.provider },
              { key: SA_PHASE, value: 'validating' },
              { key: SA_KIND, value: 'sync' satisfies WorkflowKind },
            ],
          }
        : {}),
      // The caller's key is an idempotency key: never a second sync for it, running or closed.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'FAIL',
    });
    return { workflowId, started: true, ...(problems.length > 0 ? { rejected: problems } : {}) };
  } catch (err) {
    if (input.source.kind === 'ref') await releaseSpool(input.source.ref).catch(() => false); // not ours to keep
    // Started by someone else between the check above and now: the same comparison decides.
    if (err instanceof WorkflowExecutionAlreadyStartedError && req.key !== undefined) {
      const existing = await existingSync(client, workflowId, req.key, requestHash);
      if (existing) return existing;
    }
    if (isMissingSearchAttribute(err)) throw new SyncRequestError(missingAttributesMessage(client.options.namespace));
    throw err;
  }
}

/**
 * The sync a key already names, if any: the same request answers with it (`started: false`); a
 * different one (or a sync started before requests were fingerprinted) is a SyncKeyConflictError.
 */
async function existingSync(
  client: Client,
  workflowId: string,
  key: string,
  requestHash: string,
): Promise<StartedSync | undefined> {
  let memo: Record<string, unknown> | undefined;
  try {
    ({ memo } = await client.workflow.getHandle(workflowId).describe());
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  if (memo?.[REQUEST_HASH_MEMO] !== requestHash) throw new SyncKeyConflictError(key, workflowId);
  return { workflowId, started: false };
}

/** Inline requests past this many bytes of JSON go by reference (Temporal payloads stop at ~2 MB). */
export const INLINE_LIMIT_BYTES = 256 * 1024;

/**
 * Where large inline requests are written as NDJSON: a private per-user folder (0700, files 0600,
 * sealed with the codec key when one is set), deleted by the sync when it closes (activities/spool.ts).
 */
export const spoolDir = spoolFolder;

async function sourceOf(req: SyncRequest, workflowId: string): Promise<TargetSource> {
  if (req.targetsRef) {
    return {
      kind: 'ref',
      ref: 'file' in req.targetsRef ? { file: path.resolve(req.targetsRef.file) } : req.targetsRef,
    };
  }
  const targets = req.targets ?? [];
  const bytes = targets.reduce<number>((n, t) => n + (JSON.stringify(t) ?? 'null').length + 1, 0);
  if (bytes <= INLINE_LIMIT_BYTES) return { kind: 'inline', targets };
  // Too large to carry in history: write it once, and let activities read it by slice.
  return { kind: 'ref', ref: await writeSpool(workflowId, targets) };
}

const handle = (client: Client, workflowId: string): WorkflowHandle<typeof syncWorkflow> =>
  client.workflow.getHandle<typeof syncWorkflow>(workflowId);

export async function getStatus(client: Client, workflowId: string): Promise<SyncReport> {
  return nameReportItems(await ask(handle(client, workflowId), statusQuery));
}

function parseResubmission(items: ResubmissionItem[]): Resubmission {
  // The shared check: item and byte limits (named, with the fix) before the schema.
  const checked = checkResubmission({ items });
  if (!checked.success) throw new SyncRequestError(`invalid re-submission: ${checked.message}`);
  return checked.data;
}

/** Re-submits corrected targets and answers with what the sync took and what it refused. */
export async function resubmit(
  client: Client,
  workflowId: string,
  items: ResubmissionItem[],
): Promise<ResubmissionAnswer> {
  return handle(client, workflowId).executeUpdate(resubmitUpdate, { args: [parseResubmission(items)] });
}

/** Fire-and-forget re-submission, for callers that do not wait; refusals appear in the report. */
export async function resubmitBySignal(client: Client, workflowId: string, items: ResubmissionItem[]): Promise<void> {
  await handle(client, workflowId).signal(resubmitSignal, parseResubmission(items));
}

export async function finish(client: Client, workflowId: string): Promise<void> {
  await handle(client, workflowId).signal(finishSignal);
}

export interface SyncOutcome {
  report: SyncReport;
  /** Set when the sync ended early (a refused key, a provider the worker cannot reach). */
  abortReason?: string;
}

/** Waits for the sync to close and returns its final report, aborted or not. */
export async function awaitReport(client: Client, workflowId: string): Promise<SyncOutcome> {
  try {
    return { report: nameReportItems(await handle(client, workflowId).result()) };
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === FailureType.SyncAborted) {
      return { report: nameReportItems(cause.details?.[0] as SyncReport), abortReason: cause.message };
    }
    throw err;
  }
}

/** Waits until every original target has been sent and answered (the first pass has settled). */
export async function awaitFirstPass(
  client: Client,
  workflowId: string,
  opts: { pollMs?: number; onProgress?: (report: SyncReport) => void } = {},
): Promise<SyncOutcome> {
  const h = handle(client, workflowId);
  for (;;) {
    const { status } = await h.describe();
    if (status.name !== 'RUNNING') return awaitReport(client, workflowId);
    const report = nameReportItems(await ask(h, statusQuery));
    opts.onProgress?.(report);
    if (report.firstPassSettled) return { report, ...(report.abortReason ? { abortReason: report.abortReason } : {}) };
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
  }
}

/**
 * Every rejection, failure and warning of a sync: the report's own lists, and what it had no room
 * for, paged in from each workflow `rejectedElsewhere` names (its slice workflows, and the sync
 * itself when its own list was cut). Each target appears once, in id order.
 */
const PAGE = 5000;

export async function listRejected(
  client: Client,
  workflowId: string,
): Promise<{ rejected: Rejection[]; failed: Failure[]; warnings: Warning[] }> {
  const report = await getStatus(client, workflowId);
  const rejected = new Map<string, Rejection>(report.rejected.map((r) => [r.id, r]));
  const failed = new Map<string, Failure>(report.failed.map((f) => [f.id, f]));
  const warnings = new Map<string, Warning>();
  // One warning a target (its acceptance's); a paged one is complete, the report's may be cut short.
  for (const w of report.warnings) warnings.set(w.id, w);
  let holders = report.rejectedElsewhere ?? [];
  if ((report.omitted?.rejectedElsewhere ?? 0) > 0) {
    // More slice workflows than the report could name: the sync pages them all.
    const all: typeof holders = holders.filter((x) => x.workflowId === workflowId);
    for (let offset = 0; ;) {
      const page = await ask(handle(client, workflowId), rejectedElsewhereQuery, { offset, limit: 1000 });
      all.push(...page.slices);
      offset += page.slices.length;
      if (page.slices.length === 0 || offset >= page.total) break;
    }
    holders = all;
  }
  for (const holder of holders) {
    // Each workflow answers its own paged queries (closed workflows answer by replay); a page
    // ends early at its byte budget, so the next one starts where it ended.
    const h = client.workflow.getHandle<typeof syncSliceWorkflow>(holder.workflowId);
    if (holder.count > 0) {
      for (let offset = 0; ;) {
        const page = await ask(h, sliceEntriesQuery, { offset, limit: PAGE });
        for (const e of page.entries) {
          // Paged entries are complete (the report may have dropped an echo): they win.
          const common = {
            id: e.id,
            ...(e.identity !== undefined ? { identity: e.identity } : {}),
            ...(e.line !== undefined ? { line: e.line } : {}),
            target: e.target,
          };
          if (e.state === 'rejected') {
            rejected.set(e.id, {
              ...common,
              code: e.code ?? 'rejected',
              message: e.message ?? '',
              origin: e.origin ?? 'provider',
            });
          } else if (e.state === 'failed') {
            failed.set(e.id, { ...common, code: e.code ?? 'failed', message: e.message ?? '' });
          }
        }
        offset += page.entries.length;
        if (page.entries.length === 0 || offset >= page.total) break;
      }
    }
    if (holder.warnings > 0) {
      for (let offset = 0; ;) {
        const page = await ask(h, sliceWarningsQuery, { offset, limit: PAGE });
        for (const w of page.warnings) warnings.set(w.id, w);
        offset += page.warnings.length;
        if (page.warnings.length === 0 || offset >= page.total) break;
      }
    }
  }
  const bySeq = (a: { id: string }, b: { id: string }) => (parseTargetId(a.id) ?? 0) - (parseTargetId(b.id) ?? 0);
  return {
    rejected: nameItems(report.provider, [...rejected.values()].sort(bySeq)),
    failed: nameItems(report.provider, [...failed.values()].sort(bySeq)),
    warnings: [...warnings.values()].sort(bySeq),
  };
}
