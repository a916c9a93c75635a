/**
 * The product's promise, checked on any finished sync (either provider, fan-out, re-submissions):
 * every target counted in exactly one state, nothing pending, every reported rejection and failure
 * listed once (listRejected pages them in from slice workflows), every fixed rejection superseded
 * exactly once, every target reported accepted actually taken by the provider, and duplicate
 * deliveries counted and held to a bound (at most one batch per lane per crash).
 */
import type { listRejected } from '../client/index.ts';
import { parseTargetId, type SyncReport } from '../contracts/index.ts';
import type { RecordedRequest } from '../simulators/faults.ts';
import type { Evaluation } from './scenarios.ts';

export type Listed = Awaited<ReturnType<typeof listRejected>>;

export interface Expectation {
  /** Targets the sync must have counted (originals plus corrections taken). */
  submitted: number;
  /** The provider identity of a target by sequence number; `fixes` is the seq it superseded. */
  identityOf(seq: number, fixes?: number): string | undefined;
  /** The provider identities a request carried. */
  identitiesIn(r: RecordedRequest): string[];
  /** True when the provider acted on the request (its real answer was computed). */
  landed(r: RecordedRequest): boolean;
  /** Target ids a correction was sent for: each must be superseded exactly once. */
  fixed?: ReadonlySet<string>;
  /** Seqs the provider must reject or that must be fixed (unknown products); any other rejection is a problem. */
  mayReject?: (seq: number) => boolean;
  /** Warnings expected in the listing (Insider's undefined attributes), when known. */
  warnings?: number;
  /** Targets allowed to be processed twice (crashes × lanes × batch size); undefined = no bound. */
  duplicateBound?: number;
  /**
   * A changed-only sync of `total` targets (seqs 0..total-1) of which `changed` differ from their
   * last accepted content. Then `submitted` is not `x.submitted` but the changed targets plus any
   * listed rejected or failed (a store down past the attempts fails targets whatever their content),
   * every other target is counted `unchanged`, every changed target not listed must have been taken
   * by the provider (`requests` are this sync's), and no other target may have been sent.
   */
  changedOnly?: { changed: ReadonlySet<number>; total: number };
}

export function checkSync(
  report: SyncReport,
  listed: Listed,
  requests: RecordedRequest[],
  x: Expectation,
  abortReason?: string,
): Evaluation {
  const c = report.counts;
  const problems: string[] = [];
  if (abortReason) problems.push(`aborted: ${abortReason}`);
  const sum = c.accepted + c.rejected + c.failed + c.superseded;
  if (c.submitted !== sum) problems.push(`submitted ${c.submitted} != ${sum} (accepted+rejected+failed+superseded)`);
  if (c.pending !== 0) problems.push(`${c.pending} still pending`);
  const co = x.changedOnly;
  const listedSeqs = new Set(
    [...listed.rejected, ...listed.failed].flatMap((e) => {
      const seq = parseTargetId(e.id);
      return seq === undefined ? [] : [seq];
    }),
  );
  const expectedSubmitted = co ? new Set([...co.changed, ...listedSeqs]).size : x.submitted;
  if (c.submitted !== expectedSubmitted) problems.push(`submitted ${c.submitted}, expected ${expectedSubmitted}`);
  if (co) {
    const unchanged = c.unchanged;
    if (unchanged !== co.total - expectedSubmitted)
      problems.push(
        `unchanged ${unchanged}, expected ${co.total - expectedSubmitted} (${co.changed.size} changed, ${listedSeqs.size} listed rejected or failed)`,
      );
    if (c.submitted + unchanged !== co.total)
      problems.push(`submitted ${c.submitted} + unchanged ${unchanged} != ${co.total} targets`);
  }
  if (listed.rejected.length !== c.rejected)
    problems.push(`${listed.rejected.length} rejections listed, ${c.rejected} counted`);
  if (listed.failed.length !== c.failed) problems.push(`${listed.failed.length} failures listed, ${c.failed} counted`);
  if (report.superseded.length !== c.superseded && !report.omitted?.superseded)
    problems.push(`${report.superseded.length} superseded listed, ${c.superseded} counted`);

  const states = new Map<string, number>();
  const note = (id: string) => states.set(id, (states.get(id) ?? 0) + 1);
  listed.rejected.forEach((r) => note(r.id));
  listed.failed.forEach((f) => note(f.id));
  report.superseded.forEach((s) => note(s.id));
  const inTwoStates = [...states.values()].filter((k) => k > 1).length;
  if (inTwoStates > 0) problems.push(`${inTwoStates} targets listed twice or in two states`);

  problems.push(...supersessionProblems(report, x));
  for (const r of listed.rejected) {
    const seq = parseTargetId(r.id);
    if (x.mayReject && seq !== undefined && !x.mayReject(seq)) {
      problems.push(`${r.id} rejected (${r.code}) though the provider knows it`);
      break;
    }
  }
  if (x.warnings !== undefined && listed.warnings.length !== x.warnings)
    problems.push(`${listed.warnings.length} warnings listed, ${x.warnings} expected`);

  const { processed, receipts } = tally(requests, x);
  const fixesOf = new Map(report.superseded.map((s) => [parseTargetId(s.by) ?? -1, parseTargetId(s.id)]));
  let neverTaken = 0;
  const sentSeqs = co ? [...co.changed] : Array.from({ length: c.submitted }, (_, seq) => seq);
  for (const seq of sentSeqs) {
    if (states.has(`t${seq}`)) continue;
    const identity = x.identityOf(seq, fixesOf.get(seq));
    if (identity === undefined || !processed.has(identity)) neverTaken += 1;
  }
  if (neverTaken > 0) problems.push(`${neverTaken} targets reported accepted that the provider never took`);
  if (co) {
    // Nothing whose content is unchanged goes to the provider (a store that answered wrongly "changed").
    let sentUnchanged = 0;
    for (let seq = 0; seq < co.total; seq++) {
      if (co.changed.has(seq) || listedSeqs.has(seq)) continue;
      const identity = x.identityOf(seq);
      if (identity !== undefined && processed.has(identity)) sentUnchanged += 1;
    }
    if (sentUnchanged > 0) problems.push(`${sentUnchanged} targets sent whose content had not changed`);
  }
  const lost = neverTaken + Math.abs(c.pending) + Math.max(0, expectedSubmitted - c.submitted);

  const processedTwice = [...processed.values()].filter((k) => k > 1).length;
  if (x.duplicateBound !== undefined && processedTwice > x.duplicateBound)
    problems.push(`${processedTwice} targets processed twice, bound ${x.duplicateBound}`);
  return {
    counts: c,
    invariantOk: problems.length === 0,
    lost,
    inTwoStates,
    duplicateDeliveries: [...receipts.values()].filter((k) => k > 1).length,
    processedTwice,
    providerCalls: requests.length,
    problems,
  };
}

function supersessionProblems(report: SyncReport, x: Expectation): string[] {
  const problems: string[] = [];
  const ids = report.superseded.map((s) => s.id);
  const bys = report.superseded.map((s) => s.by);
  if (new Set(ids).size !== ids.length) problems.push('a target superseded twice');
  if (new Set(bys).size !== bys.length) problems.push('one correction superseding two targets');
  if (x.fixed) {
    const superseded = new Set(ids);
    const unfixed = [...x.fixed].filter((id) => !superseded.has(id)).length;
    const extra = ids.filter((id) => !x.fixed!.has(id)).length;
    if (unfixed > 0) problems.push(`${unfixed} fixed rejections not superseded`);
    if (extra > 0) problems.push(`${extra} targets superseded that no correction named`);
  }
  return problems;
}

function tally(requests: RecordedRequest[], x: Expectation) {
  const receipts = new Map<string, number>();
  const processed = new Map<string, number>();
  for (const r of requests) {
    const isLanded = x.landed(r);
    for (const id of x.identitiesIn(r)) {
      receipts.set(id, (receipts.get(id) ?? 0) + 1);
      if (isLanded) processed.set(id, (processed.get(id) ?? 0) + 1);
    }
  }
  return { receipts, processed };
}

// ---------------------------------------------------------------------------------------------
// Per provider: what a request carried and whether it landed
// ---------------------------------------------------------------------------------------------

const realAnswer = (r: RecordedRequest) =>
  r.fault === undefined || r.fault === 'truncate' || r.fault.startsWith('delay:');

export const octogen = {
  landed: (r: RecordedRequest) => [200, 202, 400].includes(r.status) && realAnswer(r),
  identitiesIn(r: RecordedRequest): string[] {
    const targets = (r.body as { targets?: unknown } | null)?.targets;
    if (!Array.isArray(targets)) return [];
    return targets.flatMap((t) => {
      const uuid = (t as { uuid?: unknown } | null)?.uuid;
      return typeof uuid === 'string' ? [`uuid:${uuid}`] : [];
    });
  },
};

export const insider = {
  /** 200 with its real answer; a 400 for too many records never landed. */
  landed: (r: RecordedRequest) => r.status === 200 && realAnswer(r),
  identitiesIn(r: RecordedRequest): string[] {
    if (!Array.isArray(r.body)) return [];
    return r.body.flatMap((rec) => {
      const { item_id, locale } = (rec ?? {}) as { item_id?: unknown; locale?: unknown };
      return typeof item_id === 'string' && typeof locale === 'string' ? [`${item_id}:${locale}`] : [];
    });
  },
};
