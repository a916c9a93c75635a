/**
 * Bounded by construction: every report, query page and update answer the sync builds is cut to
 * a byte budget here, where it is built. What does not fit stays pageable (the sync's and its
 * slices' paging queries) and is counted in `omitted`; echoes and long messages go first, counts
 * never.
 */
import {
  ANSWER_BYTES,
  PAGE_BYTES,
  REPORT_BYTES,
  clipText,
  jsonBytes,
  targetId,
  type Failure,
  type ProviderCall,
  type RefusedItem,
  type Rejection,
  type ReportOmissions,
  type ResubmissionAnswer,
  type SliceEntryView,
  type SyncReport,
  type Warning,
} from '../contracts/index.ts';
import type { Entry, Ledger } from './ledger.ts';

/** Budgets of the report's short lists; rejections and failures take what is left. */
const LIST_BYTES = {
  calls: 16 * 1024,
  superseded: 16 * 1024,
  refused: 24 * 1024,
  warnings: 24 * 1024,
  elsewhere: 24 * 1024,
};
/** Room kept for the report's scalar fields, `omitted` and the sync's own `rejectedElsewhere` line. */
const OVERHEAD_BYTES = 4 * 1024;
/** Messages in a compacted report, and in a report's warnings, are cut to this many characters. */
const MESSAGE_CHARS = 200;

/** The longest prefix of `items` whose JSON fits `budget` bytes. */
function fitPrefix<T>(items: readonly T[], budget: number): { kept: T[]; bytes: number } {
  let bytes = 2;
  let n = 0;
  for (const item of items) {
    const size = jsonBytes(item) + 1;
    if (bytes + size > budget) break;
    bytes += size;
    n += 1;
  }
  return { kept: n === items.length ? [...items] : items.slice(0, n), bytes };
}

export const entryView = (seq: number, e: Entry): SliceEntryView => ({
  id: targetId(seq),
  state: e.state,
  ...(e.identity !== undefined ? { identity: e.identity } : {}),
  ...(e.line !== undefined ? { line: e.line } : {}),
  ...(e.target !== undefined ? { target: e.target } : {}),
  ...(e.code !== undefined ? { code: e.code } : {}),
  ...(e.message !== undefined ? { message: e.message } : {}),
  ...(e.origin !== undefined ? { origin: e.origin } : {}),
  ...(e.supersededBy !== undefined ? { by: targetId(e.supersededBy) } : {}),
});

/** A warning with its message cut to `chars`; its id, identity (at most 256 characters) and line stay. */
const clipWarning = (w: Warning, chars: number): Warning => ({
  id: w.id,
  ...(w.identity !== undefined ? { identity: w.identity } : {}),
  ...(w.line !== undefined ? { line: w.line } : {}),
  message: clipText(w.message, chars),
});

const PAGE_LIMIT = 10_000;
const window = ({ offset, limit }: { offset: number; limit: number }): [number, number] => {
  const from = Number.isFinite(offset) ? Math.max(0, Math.floor(offset)) : 0;
  const n = Number.isFinite(limit) ? Math.min(PAGE_LIMIT, Math.max(1, Math.floor(limit))) : 1000;
  return [from, n];
};

/**
 * The `sliceEntries` page: every entry that is not accepted, at most `limit` from `offset`, ending
 * early at PAGE_BYTES. A page always carries at least one entry (its echo dropped if alone too large).
 */
export function pageEntries(
  ledger: Ledger,
  page: { offset: number; limit: number },
): { total: number; entries: SliceEntryView[] } {
  const [from, n] = window(page);
  const all = Object.entries(ledger.entries);
  const entries: SliceEntryView[] = [];
  let bytes = 64;
  for (const [seq, e] of all.slice(from, from + n)) {
    let view = entryView(Number(seq), e);
    let size = jsonBytes(view) + 1;
    if (entries.length === 0 && bytes + size > PAGE_BYTES) {
      const { target, ...rest } = view;
      void target;
      view = { ...rest, ...(rest.message !== undefined ? { message: clipText(rest.message, MESSAGE_CHARS) } : {}) };
      size = jsonBytes(view) + 1;
    }
    if (bytes + size > PAGE_BYTES) break;
    bytes += size;
    entries.push(view);
  }
  return { total: all.length, entries };
}

/** The `sliceWarnings` page, bounded like `sliceEntries`. */
export function pageWarnings(
  warnings: Warning[],
  request: { offset: number; limit: number },
): { total: number; warnings: Warning[] } {
  const [from, n] = window(request);
  const page = warnings.slice(from, from + n).map((w) => clipWarning(w, 2000));
  const { kept } = fitPrefix(page, PAGE_BYTES);
  return { total: warnings.length, warnings: kept.length > 0 || page.length === 0 ? kept : page.slice(0, 1) };
}

export type ReportHead = Omit<
  SyncReport,
  'rejected' | 'failed' | 'warnings' | 'superseded' | 'refused' | 'calls' | 'rejectedElsewhere' | 'omitted'
>;

/**
 * The report, under REPORT_BYTES whatever the ledger holds. Rejections and failures are listed in
 * full while they fit; else without echoes and with messages cut short; else the first of them,
 * the rest named by this sync's own line in `rejectedElsewhere` (its `sliceEntries` query pages them).
 */
type Listed = { rejected: boolean; view: Rejection | Failure };

/** The ledger's superseded pairs, and its rejections and failures as the report lists them (echoes included). */
function entryViews(ledger: Ledger): { superseded: { id: string; by: string }[]; full: Listed[] } {
  const superseded: { id: string; by: string }[] = [];
  const full: Listed[] = [];
  for (const [seq, e] of Object.entries(ledger.entries)) {
    if (e.state === 'superseded' && e.supersededBy !== undefined) {
      superseded.push({ id: targetId(Number(seq)), by: targetId(e.supersededBy) });
    } else if (e.state === 'rejected' || e.state === 'failed') {
      const common = {
        id: targetId(Number(seq)),
        ...(e.identity !== undefined ? { identity: e.identity } : {}),
        ...(e.line !== undefined ? { line: e.line } : {}),
        target: e.target,
      };
      full.push(
        e.state === 'rejected'
          ? {
              rejected: true,
              view: { ...common, code: e.code ?? 'rejected', message: e.message ?? '', origin: e.origin ?? 'provider' },
            }
          : { rejected: false, view: { ...common, code: e.code ?? 'failed', message: e.message ?? '' } },
      );
    }
  }
  return { superseded, full };
}

/**
 * Rejections and failures within `budget` bytes: full while they fit; else without echoes and
 * with messages cut short; else the first that fit. Counts the echoes dropped in `omitted`.
 */
function fitEntries(full: Listed[], budget: number, omitted: ReportOmissions): Listed[] {
  const sizes = full.map((x) => jsonBytes(x.view) + 1);
  if (sizes.reduce((a, b) => a + b, 2) <= budget) return full;
  const compact = full.map(({ rejected, view }) => {
    const { target, ...rest } = view;
    void target;
    return { rejected, view: { ...rest, message: clipText(rest.message, MESSAGE_CHARS) } as Rejection | Failure };
  });
  const kept = fitPrefix(
    compact.map((x) => x.view),
    budget,
  ).kept.length;
  const listed = compact.slice(0, kept);
  // Counted for the entries the report lists: an echo dropped or a message cut short.
  omitted.echoes = listed.filter(
    (x, i) => full[i]?.view.target !== undefined || x.view.message !== full[i]?.view.message,
  ).length;
  return listed;
}

export function buildReport(head: ReportHead, ledger: Ledger): SyncReport {
  const omitted: ReportOmissions = {
    rejected: 0,
    failed: 0,
    warnings: 0,
    superseded: 0,
    refused: ledger.omittedRefused ?? 0,
    calls: ledger.omittedCalls ?? 0,
    rejectedElsewhere: 0,
    echoes: 0,
  };
  const calls = fitPrefix<ProviderCall>(ledger.calls, LIST_BYTES.calls);
  omitted.calls += ledger.calls.length - calls.kept.length;
  const refused = fitPrefix<RefusedItem>(ledger.refused, LIST_BYTES.refused);
  omitted.refused += ledger.refused.length - refused.kept.length;
  const warnings = fitPrefix(
    ledger.warnings.map((w) => clipWarning(w, MESSAGE_CHARS)),
    LIST_BYTES.warnings,
  );
  omitted.warnings = ledger.warnings.length - warnings.kept.length;
  const { superseded, full } = entryViews(ledger);
  const supersededFit = fitPrefix(superseded, LIST_BYTES.superseded);
  omitted.superseded = superseded.length - supersededFit.kept.length;
  const elsewhereAll = ledger.elsewhere.flatMap((x) =>
    x.workflowId ? [{ workflowId: x.workflowId, count: x.rejected + x.failed, warnings: x.warnings ?? 0 }] : [],
  );
  const elsewhere = fitPrefix(elsewhereAll, LIST_BYTES.elsewhere);
  omitted.rejectedElsewhere = elsewhereAll.length - elsewhere.kept.length;

  const lists = calls.bytes + refused.bytes + warnings.bytes + supersededFit.bytes + elsewhere.bytes;
  const listed = fitEntries(full, REPORT_BYTES - OVERHEAD_BYTES - jsonBytes(head) - lists, omitted);
  const rejected = listed.filter((x) => x.rejected).map((x) => x.view as Rejection);
  const failed = listed.filter((x) => !x.rejected).map((x) => x.view as Failure);
  const allRejected = full.filter((x) => x.rejected).length;
  omitted.rejected = allRejected - rejected.length;
  omitted.failed = full.length - allRejected - failed.length;

  // The sync's own entries and warnings that did not fit are paged from the sync itself.
  const self =
    omitted.rejected + omitted.failed + omitted.warnings > 0
      ? [{ workflowId: head.workflowId, count: omitted.rejected + omitted.failed, warnings: omitted.warnings }]
      : [];
  const rejectedElsewhere = [...self, ...elsewhere.kept];
  const anyOmitted = Object.values(omitted).some((n) => n > 0);
  return {
    ...head,
    rejected,
    failed,
    warnings: warnings.kept,
    superseded: supersededFit.kept,
    refused: refused.kept,
    calls: calls.kept,
    ...(rejectedElsewhere.length > 0 ? { rejectedElsewhere } : {}),
    ...(anyOmitted ? { omitted } : {}),
  };
}

/**
 * An update's answer under ANSWER_BYTES: every item keeps its index and code; the first item of
 * each code keeps its message, the others' messages are cut shorter until it fits (the item limit
 * makes the last step always fit).
 */
export function boundAnswer(answer: ResubmissionAnswer): ResubmissionAnswer {
  let bounded = answer;
  for (const max of [500, 200, 80, 30, 0]) {
    const seen = new Set<string>();
    bounded = {
      taken: answer.taken,
      refused: answer.refused.map((r) => {
        const first = !seen.has(r.code);
        seen.add(r.code);
        const cut = first ? Math.min(500, Math.max(max, 300)) : max;
        return {
          ...r,
          ...(max === 0 && r.fixes !== undefined ? { fixes: clipText(r.fixes, 24) } : {}),
          message: cut === 0 ? '' : clipText(r.message, cut),
        };
      }),
    };
    if (jsonBytes(bounded) <= ANSWER_BYTES) return bounded;
  }
  return bounded;
}

/** Refused items and provider calls a run hands to the next one, at most (the rest are counted). */
const CARRIED_LIST = 50;

/**
 * Shrinks the ledger a run hands to the next one on continue-as-new: settled entries drop their
 * echoes and keep messages short (pending ones keep their targets: they are still to be sent),
 * refused items and calls past CARRIED_LIST are only counted, and slice workflows are named by
 * number. `expandCarried` undoes the naming in the next run.
 */
export function compactForCarry(ledger: Ledger, workflowId: string): void {
  for (const e of Object.values(ledger.entries)) {
    if (e.state === 'pending') continue;
    delete e.target;
    if (e.message !== undefined) e.message = clipText(e.message, MESSAGE_CHARS);
  }
  ledger.warnings = ledger.warnings.map((w) => clipWarning(w, MESSAGE_CHARS));
  if (ledger.refused.length > CARRIED_LIST) {
    ledger.omittedRefused = (ledger.omittedRefused ?? 0) + ledger.refused.length - CARRIED_LIST;
    ledger.refused = ledger.refused.slice(0, CARRIED_LIST);
  }
  if (ledger.calls.length > CARRIED_LIST) {
    ledger.omittedCalls = (ledger.omittedCalls ?? 0) + ledger.calls.length - CARRIED_LIST;
    ledger.calls = ledger.calls.slice(0, CARRIED_LIST);
  }
  const prefix = `${workflowId}/slice-`;
  ledger.elsewhere = ledger.elsewhere.map((x) => {
    const n = x.workflowId?.startsWith(prefix) ? Number(x.workflowId.slice(prefix.length)) : Number.NaN;
    if (!Number.isInteger(n) || x.workflowId !== `${prefix}${n}`) return x;
    const { workflowId: _named, ...rest } = x;
    void _named;
    return { ...rest, slice: n };
  });
}

/** The carried ledger as this run keeps it: slice workflows named again. */
export function expandCarried(ledger: Ledger, workflowId: string): Ledger {
  ledger.elsewhere = ledger.elsewhere.map((x) => {
    if (x.slice === undefined || x.workflowId !== undefined) return x;
    const { slice, ...rest } = x;
    return { ...rest, workflowId: `${workflowId}/slice-${slice}` };
  });
  return ledger;
}

/** What the ledger would weigh once compacted for continue-as-new. */
export function carriedLedgerBytes(ledger: Ledger): number {
  let bytes = jsonBytes({ ...ledger, entries: {} });
  for (const [seq, e] of Object.entries(ledger.entries)) {
    const { target, message, ...rest } = e;
    bytes +=
      seq.length +
      4 +
      jsonBytes(rest) +
      (message !== undefined ? jsonBytes(clipText(message, MESSAGE_CHARS)) + 11 : 0) +
      (e.state === 'pending' ? jsonBytes(target) + 10 : 0);
  }
  return bytes;
}
