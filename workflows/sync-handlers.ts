/**
 * The sync's handlers, registered in one place: the `status` and paging queries, the
 * re-submission signal and update (and the checks that refuse one), `finish`, and the slices'
 * progress signal. Each carries the description `temporal workflow metadata` shows.
 */
import { ApplicationFailure, patched, setHandler } from '@temporalio/workflow';
import {
  CARRY_BYTES,
  FailureType,
  HANDLER_DESCRIPTIONS,
  checkResubmission,
  finishSignal,
  formatCount,
  jsonBytes,
  packPages,
  pageRequest,
  rejectedElsewhereQuery,
  resubmitSignal,
  resubmitUpdate,
  sliceEntriesQuery,
  sliceProgressSignal,
  sliceWarningsQuery,
  statusQuery,
  type RefusedItem,
  type Resubmission,
  type ResubmissionAnswer,
} from '../contracts/index.ts';
import { addRefused } from './ledger.ts';
import { boundAnswer, carriedLedgerBytes, pageEntries, pageWarnings } from './report.ts';
import { takeResubmission } from './resubmission.ts';
import { showRefusal, type SyncRun } from './sync-run.ts';

/** Room kept in the carried state for the slices it names (about 1,000 at ~45 bytes) and short lists. */
export const CARRY_RESERVE = 64 * 1024;
/** What one re-submitted target may add to the carried ledger once settled (no echo, message cut). */
const CARRIED_BYTES_PER_ITEM = 400;

type Why = { code: string; message: string };

/** True while this run may still continue as new: what re-submissions add is carried. */
const mayContinue = (run: SyncRun): boolean => run.state.fanningOut && run.state.nextSlice < run.state.groups.length;

/** Why this sync cannot take the re-submission now, if it cannot. */
function cannotTake(run: SyncRun, resubmission: Resubmission): Why | undefined {
  const { state } = run;
  if (state.closing) {
    return { code: 'sync_closed', message: 'the sync has closed its re-submission window; start a new sync' };
  }
  if (!mayContinue(run)) return undefined;
  const after =
    carriedLedgerBytes(state.ledger) +
    jsonBytes(packPages(state.slices, run.pageSize)) +
    CARRY_RESERVE +
    // Settled before any continue-as-new: targets are not carried, only entries without echoes.
    resubmission.items.length * CARRIED_BYTES_PER_ITEM;
  if (after <= CARRY_BYTES) return undefined;
  return {
    code: 'sync_state_full',
    message:
      `this sync is still in its first pass and the state it carries from run to run is full (limit ${formatCount(CARRY_BYTES)} bytes); ` +
      're-submit after the first pass has settled (status firstPassSettled: true), or in smaller re-submissions',
  };
}

function refuseAll(run: SyncRun, resubmission: Resubmission, why: Why): ResubmissionAnswer {
  const refused: RefusedItem[] = resubmission.items.map((item, index) => ({
    index,
    ...why,
    ...(item.fixes !== undefined ? { fixes: item.fixes } : {}),
  }));
  addRefused(run.state.ledger, refused);
  return boundAnswer({ taken: [], refused });
}

async function resubmit(run: SyncRun, resubmission: Resubmission): Promise<ResubmissionAnswer> {
  const why = cannotTake(run, resubmission);
  if (why) return refuseAll(run, resubmission, why);
  const { planTargets, planResubmission } = run.activities;
  const plan = await (patched('resubmission-planned-by-activity') ? planResubmission : planTargets)({
    provider: run.provider,
    targets: resubmission.items.map((item, seq) => ({ seq, target: item.target })),
    ...(run.opts.batchSize !== undefined ? { batchSize: run.opts.batchSize } : {}),
  });
  // Checked again: other re-submissions may have filled the carried state while this one was planned.
  const late = mayContinue(run) ? cannotTake(run, resubmission) : undefined;
  if (late) return refuseAll(run, resubmission, late);
  const { answer, batches } = takeResubmission(run.state.ledger, resubmission, plan, run.originals());
  run.resubmissions.enqueue(batches);
  return boundAnswer(answer);
}

/** The slices holding what the report had no room for, by page. */
function rejectedElsewhere(run: SyncRun, offset: number, limit: number) {
  const all = run.state.ledger.elsewhere.flatMap((x) =>
    x.workflowId ? [{ workflowId: x.workflowId, count: x.rejected + x.failed, warnings: x.warnings ?? 0 }] : [],
  );
  const n = Number.isFinite(limit) ? Math.min(1000, Math.max(1, Math.floor(limit))) : 1000;
  return { total: all.length, slices: all.slice(offset, offset + n) };
}

export function registerSyncHandlers(run: SyncRun): void {
  const d = HANDLER_DESCRIPTIONS;
  const { state } = run;
  setHandler(statusQuery, run.report, { description: d.status });
  // The sync's own entries and warnings, by page: what its report had no room for.
  setHandler(sliceEntriesQuery, (...page) => pageEntries(state.ledger, pageRequest(...page)), {
    description: d.sliceEntries,
  });
  setHandler(sliceWarningsQuery, (...page) => pageWarnings(state.ledger.warnings, pageRequest(...page)), {
    description: d.sliceWarnings,
  });
  setHandler(
    rejectedElsewhereQuery,
    (...page) => {
      const { offset, limit } = pageRequest(...page);
      return rejectedElsewhere(run, offset, limit);
    },
    { description: d.rejectedElsewhere },
  );
  setHandler(sliceProgressSignal, run.live.update, { description: d.sliceProgress });
  setHandler(finishSignal, () => void (state.finishRequested = true), { description: d.finish });
  setHandler(
    resubmitSignal,
    async (raw) => {
      // The payload is in history already: an over-limit or malformed one is refused once, as a whole.
      const checked = checkResubmission(raw);
      if (!checked.success) {
        addRefused(state.ledger, [{ index: -1, code: 'invalid_resubmission', message: checked.message }]);
        showRefusal(run, checked.message);
        return;
      }
      await resubmit(run, checked.data);
    },
    { description: d.resubmit },
  );
  setHandler(resubmitUpdate, (resubmission) => resubmit(run, resubmission), {
    description: d.resubmitWithAnswer,
    // Rejected updates never enter history: the caller gets the reason at once.
    validator: (raw) => {
      const checked = checkResubmission(raw);
      const message = !checked.success
        ? `invalid re-submission: ${checked.message}`
        : state.closing
          ? 'the sync has closed its re-submission window; start a new sync'
          : undefined;
      if (message !== undefined) {
        throw ApplicationFailure.create({ type: FailureType.InvalidResubmission, nonRetryable: true, message });
      }
    },
  });
}
