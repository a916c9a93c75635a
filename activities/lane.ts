/**
 * A lane (contracts/lane.ts): one activity that reads its pages of a source by byte span, plans
 * each page, and sends the batches back to back. After every answered batch it heartbeats its
 * cursor and compact outcomes; a retried run (the worker died) resumes from the last heartbeat,
 * so a batch whose answer was heartbeated is never sent again. A run returns after LANE_RUN_MS or
 * LANE_OUTCOME_BYTES of outcomes so the workflow's counts move; a provider with a declared budget
 * gets one call per run, so the task queue's rate limit (which counts dispatches) counts calls.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { batchRejectionCode, providerFailureOutcome, type ProviderFailureDetails } from '../contracts/errors.ts';
import {
  LANE_CALLS_KEPT,
  LANE_OUTCOME_BYTES,
  LANE_RUN_MS,
  CHANGED_ONLY_PAGES,
  mergeRanges,
  toRanges,
  type LaneFailure,
  type LaneInput,
  type LaneProgress,
  type LaneResult,
  type SliceRef,
  type TargetsRef,
} from '../contracts/index.ts';
import { boundedIdentity, planTargets } from './plan.ts';
import { answerWithinBudget } from './answer-budget.ts';
import { serverHeartbeat } from './server-heartbeat.ts';
import type { AnyProviderAdapter, BatchAnswer, BatchLimits } from './providers/adapter.ts';

/** At most `maxCalls` provider calls for one batch (a budgeted provider: one); `onCall` counts them. */
export interface CallCap {
  maxCalls?: number;
  onCall?: () => void;
}

const HEARTBEAT_EVERY_MS = 1_000;
/**
 * One batch's outcomes take at most this much of a run's result; a run takes no further batch
 * past LANE_OUTCOME_BYTES, so a result stays under 256 KB.
 */
const BATCH_OUTCOME_BYTES = 200 * 1024;
/** Validation rejections a run gathers at most: with no answer after them, a result stays under 256 KB. */
const VALIDATION_OUTCOME_BYTES = 200 * 1024;

/** What a lane needs of the activities around it (activities/index.ts builds it). */
export interface LaneKit {
  adapter(provider: string): AnyProviderAdapter;
  config(adapter: AnyProviderAdapter): unknown;
  /** The page's lines parsed, one per target in sequence order (a line that is not JSON has `error`). */
  readPage(
    ref: TargetsRef,
    page: SliceRef,
  ): Promise<{ seq: number; line?: number | undefined; target?: unknown; error?: string | undefined }[]>;
  limits(adapter: AnyProviderAdapter, config: unknown): Promise<BatchLimits>;
  send(
    adapter: AnyProviderAdapter,
    config: unknown,
    targets: unknown[],
    batch: number,
    beat: () => void,
    cap: CallCap,
  ): Promise<BatchAnswer>;
  mark(adapter: AnyProviderAdapter, targets: unknown[], answer: BatchAnswer, lines: (number | undefined)[]): void;
  echo(adapter: AnyProviderAdapter, target: unknown): unknown;
  clip(message: string): string;
  /**
   * Records what the provider said of each item in the target-state store; throws (and so fails
   * the run, to be retried from its last heartbeat) when the store cannot take it.
   */
  record(adapter: AnyProviderAdapter, config: unknown, call: string, items: readonly ItemOutcome[]): Promise<void>;
  /**
   * Of valid planned targets, the sequence numbers whose content equals their item's last accepted
   * one (`changedOnly`); throws (failing the run, retried from its last heartbeat) when the store
   * cannot answer.
   */
  unchanged(
    adapter: AnyProviderAdapter,
    config: unknown,
    items: readonly { seq: number; identity: string; target: unknown }[],
  ): Promise<number[]>;
}

/** One item's outcome as the target-state store takes it: the target as sent and what became of it. */
export interface ItemOutcome {
  target: unknown;
  state: 'accepted' | 'rejected' | 'failed';
  code?: string | undefined;
  message?: string | undefined;
}

/** An answer's outcomes as store items, in batch order. */
export const answeredItems = (targets: readonly unknown[], answer: BatchAnswer): ItemOutcome[] =>
  answer.outcomes.map((o, i) =>
    o.state === 'accepted'
      ? { target: targets[i], state: 'accepted', ...(o.warning !== undefined ? { message: o.warning } : {}) }
      : { target: targets[i], state: 'rejected', code: o.code, message: o.message },
  );

const noBeat = (): void => undefined;
const bytesOf = (v: unknown): number => Buffer.byteLength(JSON.stringify(v) ?? '', 'utf8');

export function createLaneActivity(kit: LaneKit) {
  return async function sendLane(input: LaneInput): Promise<LaneResult> {
    const ctx = Context.current();
    const adapter = kit.adapter(input.provider);
    const config = kit.config(adapter);
    const budgeted = adapter.budget?.(config) !== undefined;
    // A retry after a crash or timeout resumes from the last heartbeat the server has.
    const resumed = ctx.info.attempt > 1 ? (ctx.info.heartbeatDetails as LaneProgress | undefined) : undefined;
    const p: LaneProgress = resumed ?? {
      cursor: input.cursor ?? { page: 0, done: [] },
      accepted: 0,
      outcomes: [],
      failures: [],
      transient: [],
      tooLarge: [],
      calls: [],
      callCount: 0,
      headAttempts: input.headAttempts ?? 0,
      lane: input.lane,
      ...(input.slice !== undefined ? { slice: input.slice } : {}),
    };
    // Which targets this run settled as accepted or unchanged, by range: the workflow counts each
    // once. (Not when resuming from a heartbeat of a worker that kept counts only.)
    if (!resumed || resumed.acceptedSeqs !== undefined) {
      p.acceptedSeqs ??= [];
      if (input.changedOnly) p.unchangedSeqs ??= [];
    }
    let outcomeBytes = bytesOf(p.outcomes) + bytesOf(p.failures) + bytesOf(p.transient);
    /** What the accepted and unchanged ranges weigh in the result (each about this many bytes). */
    const rangeBytes = () => ((p.acceptedSeqs?.length ?? 0) + (p.unchangedSeqs?.length ?? 0)) * RANGE_BYTES;
    const started = Date.now();
    let calls = 0;
    let batchNumber = p.callCount;
    /**
     * The page in hand's settled sequence numbers, and the same as sorted ranges (what heartbeats
     * show). Taken from the cursor before the first heartbeat: a heartbeat that named the page with
     * none of it done would send a retry (a kill before the next heartbeat reached the server) back
     * over batches already answered, and count them again.
     */
    let done = new Set<number>();
    let doneRanges: [number, number][] = p.cursor.done.map(([from, to]) => [from, to]);
    const snapshot = (): LaneProgress => ({
      ...p,
      cursor: { page: p.cursor.page, done: doneRanges.slice() },
      ...(p.acceptedSeqs ? { acceptedSeqs: p.acceptedSeqs.map(([a, b]): [number, number] => [a, b]) } : {}),
      ...(p.unchangedSeqs ? { unchangedSeqs: p.unchangedSeqs.map(([a, b]): [number, number] => [a, b]) } : {}),
      outcomes: p.outcomes.slice(),
      failures: p.failures.slice(),
      transient: p.transient.slice(),
      tooLarge: p.tooLarge.slice(),
      calls: p.calls.slice(),
    });
    /**
     * What the server is told: progress whose answers the store has, taken only between a write and
     * the next call. Before each call the lane waits until the server has it, so a run retried after
     * a crash or a cut from the server resumes from there and sends again at most the batch in flight.
     */
    let recorded = snapshot();
    let settledSince = 0;
    const heartbeat = serverHeartbeat(ctx);
    const beat = () => heartbeat.beat(recorded);
    /** The last progress sent to the server; awaited before the next call. */
    let published: Promise<void> = Promise.resolve();
    /** Sends what is settled now (every answer in it recorded) at once, so it overlaps the lane's bookkeeping. */
    const publish = () => {
      recorded = snapshot();
      settledSince = 0;
      published = heartbeat.confirm(recorded);
      // Handled here too: a run that returns before its next call never awaits it.
      published.catch(() => undefined);
    };
    /** Records an answer in the store before anything else: a store that cannot take it fails the run. */
    const record = (call: string, items: readonly ItemOutcome[]) => kit.record(adapter, config, call, items);
    /** The call a batch's answer came from, as the store keys it: a resumed run sends it again under the same key. */
    const callKey = (n: number) =>
      `${ctx.info.workflowExecution?.workflowId ?? 'activity'}#lane-${input.slice ?? 0}-${input.lane}#${n}`;
    const result = (extra: Partial<LaneResult> = {}): LaneResult => ({
      ...snapshot(),
      done: false,
      ...(budgeted ? { oneCallPerRun: true } : {}),
      ...extra,
    });
    beat();
    const timer = setInterval(beat, HEARTBEAT_EVERY_MS);
    try {
      // The run's result names every answer; each was recorded before the lane went on.
      return await sendPages();
    } finally {
      clearInterval(timer);
    }

    async function sendPages(): Promise<LaneResult> {
      while (p.cursor.page < input.pages.length) {
        // A changed-only sync reads several pages as one: its few changed targets fill whole batches.
        const { page, pages: unitPages } = pageUnit(
          input.pages,
          p.cursor.page,
          input.changedOnly ? CHANGED_ONLY_PAGES : 1,
        );
        p.runFrom = input.pages[0]?.firstSeq ?? page.firstSeq;
        p.pageFrom = page.firstSeq;
        done = new Set<number>();
        doneRanges = p.cursor.done.map(([from, to]) => [from, to]);
        for (const [from, to] of p.cursor.done) for (let s = from; s < to; s += 1) done.add(s);
        const settle = (seqs: number[]) => {
          const fresh = seqs.filter((s) => !done.has(s));
          for (const s of fresh) done.add(s);
          if (fresh.length > 0) doneRanges = mergeRanges(doneRanges, toRanges(fresh.sort((a, b) => a - b)));
          settledSince += fresh.length;
        };
        const outcome = (o: LaneProgress['outcomes'][number]) => {
          p.outcomes.push(o);
          outcomeBytes += bytesOf(o);
        };

        // Read and plan the whole page (duplicates are found across it), then skip what is settled.
        const items = await kit.readPage(input.ref, page);
        // A page's items are its consecutive sequence numbers, in order (readSlice checks the count).
        const itemOf = (seq: number) => items[seq - page.firstSeq];
        const parsed = new Map<number, unknown>();
        const limits = await kit.limits(adapter, config);
        // Items carry their line: a duplicate's message names it ("line 12").
        const wellFormed = items.filter(
          (i): i is (typeof items)[number] & { target: unknown } => i.error === undefined,
        );
        const plan = planTargets(adapter, limits, wellFormed, input.batchSize, parsed);
        let batches = plan.batches;
        const rejections: { seq: number; code: string; message: string; identity?: string }[] = [
          ...items
            .filter((i) => i.error !== undefined)
            .map((i) => ({
              seq: i.seq,
              code: 'invalid_json',
              // The reason only: a parser's message would quote the line, and a line may hold anything.
              message: `line ${i.line} is not JSON; write one JSON target a line`,
            })),
          ...plan.rejections,
        ].filter((r) => !done.has(r.seq));
        for (const r of rejections.sort((a, b) => a.seq - b.seq)) {
          // A page of rejections may be larger than a run's result may be: the rest comes next run.
          // (No answer is added after these in this run: the batch check below returns first.)
          if (outcomeBytes >= VALIDATION_OUTCOME_BYTES) return result();
          const line = itemOf(r.seq)?.line;
          const echo = kit.echo(adapter, itemOf(r.seq)?.target);
          outcome({
            seq: r.seq,
            state: 'rejected',
            code: r.code,
            message: kit.clip(r.message),
            origin: 'validation',
            ...(r.identity !== undefined ? { identity: r.identity } : {}),
            ...(line !== undefined ? { line } : {}),
            ...(echo !== undefined ? { target: echo } : {}),
          });
          settle([r.seq]);
        }

        if (input.changedOnly) {
          // One store query a page: targets whose content the provider already has are settled, not sent.
          const open = plan.valid.filter((v) => !done.has(v.seq));
          const same = await kit.unchanged(
            adapter,
            config,
            open.map((v) => ({ ...v, target: parsed.get(v.seq) })),
          );
          const fresh = same.filter((s) => !done.has(s));
          p.unchanged = (p.unchanged ?? 0) + fresh.length;
          if (p.unchangedSeqs) p.unchangedSeqs = addRanges(p.unchangedSeqs, fresh);
          settle(fresh);
          // Batches of the changed targets only: the planned ones less the unchanged would go out nearly empty.
          const valid = new Set(plan.valid.map((v) => v.seq));
          const changed = wellFormed.filter((i) => valid.has(i.seq) && !done.has(i.seq));
          batches = planTargets(adapter, limits, changed, input.batchSize, parsed).batches;
        }

        for (const batch of batches.map((b) => b.filter((s) => !done.has(s))).filter((b) => b.length > 0)) {
          const full = outcomeBytes + rangeBytes() >= LANE_OUTCOME_BYTES || Date.now() - started >= LANE_RUN_MS;
          if (full || (budgeted && calls >= 1)) return result();
          // The server has every answer so far before the next call (each was recorded first), so a
          // crash or a cut re-sends at most the batch in flight. Progress settled without an answer
          // (validation, unchanged, a hand-off) goes now.
          if (settledSince > 0) publish();
          await published;
          batchNumber += 1;
          p.batch = batchNumber;
          p.targets = batch.length;
          // The batch in flight, for `describe` (the timer's heartbeats); no settled progress changed.
          recorded = { ...recorded, batch: batchNumber, targets: batch.length };
          const sendTargets = batch.map((s) => parsed.get(s));
          let answer: BatchAnswer;
          try {
            answer = await kit.send(adapter, config, sendTargets, batchNumber, noBeat, {
              maxCalls: budgeted ? 1 : Infinity,
              onCall: () => {
                calls += 1;
              },
            });
          } catch (err) {
            const failure = err instanceof ApplicationFailure ? err : undefined;
            const type = failure?.type ?? (err as Error).name ?? 'Error';
            const message = kit.clip((err as Error).message ?? String(err));
            const details = failure?.details?.[0] as ProviderFailureDetails | undefined;
            const disposition = providerFailureOutcome(type, batch.length);
            if (disposition === 'abort') {
              p.failures.push({ seqs: toRanges(batch), code: type, message });
              settle(batch);
              return result({ abort: { type, message } });
            }
            if (disposition === 'split') {
              // No governor to learn from: the workflow splits the batch. Its sequence numbers count too.
              p.tooLarge.push(batch);
              outcomeBytes += bytesOf(batch);
              settle(batch);
              continue;
            }
            if (disposition === 'reject') {
              const code = batchRejectionCode(type, details);
              for (const seq of batch) outcome({ seq, state: 'rejected', code, message, origin: 'provider' });
              await record(
                callKey(batchNumber),
                sendTargets.map((target) => ({ target, state: 'rejected', code, message })),
              );
              settle(batch);
              publish();
              continue;
            }
            // Transient (5xx, 429, network, timeout): this batch again later, until its attempts run out.
            const attempts = (p.headAttempts ?? 0) + 1;
            if (attempts >= input.callAttempts) {
              const failure: LaneFailure = {
                seqs: toRanges(batch),
                code: type,
                message: `${message} (after ${attempts} attempts)`,
              };
              // Each failed target's identity and line, while the batch's share of the result has room.
              const items = failedItems(adapter, batch, parsed, itemOf);
              const itemBytes = bytesOf(items);
              if (itemBytes <= BATCH_OUTCOME_BYTES - outcomeBytes) {
                Object.assign(failure, items);
                outcomeBytes += itemBytes;
              }
              p.failures.push(failure);
              outcomeBytes += message.length + 64;
              p.headAttempts = 0;
              await record(
                callKey(batchNumber),
                sendTargets.map((target) => ({ target, state: 'failed', code: type, message: failure.message })),
              );
              settle(batch);
              publish();
              continue;
            }
            const asked = failure?.nextRetryDelay;
            const delayMs =
              asked !== undefined && asked !== null
                ? msToNumber(asked)
                : Math.min(input.callMaximumMs, input.callInitialMs * 2 ** (attempts - 1));
            p.headAttempts = attempts;
            return result({ retry: { delayMs, headAttempts: attempts, reason: message } });
          }
          p.headAttempts = 0;
          const sentLines = batch.map((s) => itemOf(s)?.line);
          kit.mark(adapter, sendTargets, answer, sentLines);
          // Plain acceptances weigh nothing: only answers with rejections or warnings are measured.
          if (answer.outcomes.some((o) => o.state !== 'accepted' || o.warning !== undefined)) {
            answerWithinBudget(answer, BATCH_OUTCOME_BYTES);
          }
          const answered = batch.slice(0, answer.outcomes.length);
          const acceptedNow: number[] = [];
          answer.outcomes.forEach((o, i) => {
            const seq = batch[i] as number;
            if (o.state === 'accepted') {
              p.accepted += 1;
              acceptedNow.push(seq);
              if (o.warning !== undefined) {
                outcome({
                  seq,
                  state: 'warning',
                  message: kit.clip(o.warning),
                  ...(o.identity !== undefined ? { identity: o.identity } : {}),
                  ...(o.line !== undefined ? { line: o.line } : {}),
                });
              }
            } else if (o.transient) {
              p.transient.push({
                seq,
                code: o.code,
                message: o.message,
                ...(o.identity !== undefined ? { identity: o.identity } : {}),
                ...(o.line !== undefined ? { line: o.line } : {}),
              });
              outcomeBytes += o.message.length + 40 + (o.identity?.length ?? 0) + 20;
            } else {
              outcome({
                seq,
                state: 'rejected',
                code: o.code,
                message: o.message,
                origin: 'provider',
                ...(o.identity !== undefined ? { identity: o.identity } : {}),
                ...(o.target !== undefined ? { target: o.target } : {}),
                ...(o.line !== undefined ? { line: o.line } : {}),
              });
            }
          });
          if (p.acceptedSeqs) p.acceptedSeqs = addRanges(p.acceptedSeqs, acceptedNow);
          p.callCount += 1;
          if (p.calls.length < LANE_CALLS_KEPT) {
            p.calls.push({
              ...(input.slice !== undefined ? { slice: input.slice } : {}),
              batch: batchNumber,
              httpStatus: answer.httpStatus,
              targets: answered.length,
              ...(answer.requestId !== undefined ? { requestId: answer.requestId } : {}),
              ...(answer.providerWorkflowId !== undefined ? { providerWorkflowId: answer.providerWorkflowId } : {}),
            });
          }
          // Settled once the store has the answer: a store that cannot take it fails the run, and the
          // retry (from the last heartbeat) sends this batch again rather than lose its answer.
          await record(callKey(batchNumber), answeredItems(sendTargets, answer));
          settle(answered);
          publish();
        }
        // A budgeted call that carried part of a batch: the rest goes in the next run.
        if (batches.some((b) => b.some((s) => !done.has(s)))) return result();
        // Ranges settled beyond this unit (an earlier run read a larger one) stay settled.
        const next = input.pages[p.cursor.page + unitPages]?.firstSeq ?? Infinity;
        p.cursor = { page: p.cursor.page + unitPages, done: doneRanges.filter(([, to]) => to > next) };
        done = new Set<number>();
        doneRanges = [];
      }
      delete p.batch;
      delete p.targets;
      return result({ done: true });
    }
  };
}

/**
 * The pages from `at`, up to `most` of them, as one slice reference: only consecutive pages (each
 * starting where the one before ends, in bytes and in sequence numbers) join.
 */
export function pageUnit(pages: readonly SliceRef[], at: number, most: number): { page: SliceRef; pages: number } {
  const first = pages[at] as SliceRef;
  let last = first;
  let n = 1;
  for (let i = at + 1; i < pages.length && n < most; i += 1) {
    const next = pages[i] as SliceRef;
    if (next.start !== last.end || next.firstSeq !== last.firstSeq + last.count) break;
    last = next;
    n += 1;
  }
  if (n === 1) return { page: first, pages: 1 };
  return {
    page: { ...first, count: last.firstSeq + last.count - first.firstSeq, end: last.end },
    pages: n,
  };
}

/** The identities and lines of a failed batch's targets, in batch order (what LaneFailure carries). */
function failedItems(
  adapter: AnyProviderAdapter,
  batch: number[],
  parsed: Map<number, unknown>,
  itemOf: (seq: number) => { line?: number | undefined } | undefined,
): Pick<LaneFailure, 'identities' | 'lines'> {
  const identities = batch.map((s) => {
    const target = parsed.get(s);
    return target === undefined ? '' : boundedIdentity(adapter, target);
  });
  const lines = batch.map((s) => itemOf(s)?.line ?? null);
  return { identities, ...(lines.some((l) => l !== null) ? { lines } : {}) };
}

/** What one [from, to) range weighs in a result or heartbeat, about (`[123456789,123457789],`). */
const RANGE_BYTES = 24;

/**
 * Sorted, disjoint ranges with `seqs` added: in place at the end when they follow the last range
 * (a lane settles its page in order, so this is the usual case), else merged.
 */
export function addRanges(ranges: [number, number][], seqs: number[]): [number, number][] {
  if (seqs.length === 0) return ranges;
  let sorted = true;
  for (let i = 1; i < seqs.length && sorted; i += 1) sorted = (seqs[i - 1] as number) < (seqs[i] as number);
  const add = toRanges(sorted ? seqs : [...new Set(seqs)].sort((a, b) => a - b));
  const last = ranges[ranges.length - 1];
  const first = add[0] as [number, number];
  if (!last || first[0] >= last[1]) {
    if (last && first[0] === last[1]) {
      last[1] = first[1];
      ranges.push(...add.slice(1));
    } else ranges.push(...add);
    return ranges;
  }
  return mergeRanges(ranges, add);
}
