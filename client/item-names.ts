/**
 * The provider's identity of an item, filled in on the client side where the sync could not name
 * it: a target of an inline sync whose batch failed as a whole (the provider never answered, so no
 * activity named its items) keeps its own echo in the report, and the identity derives from it the
 * same way the activities derive it (bounded to 256 characters). What already names its item, or
 * keeps no echo, or does not parse as a target, stays as it is.
 */
import { boundedIdentity } from '../activities/plan.ts';
import { providerAdapter } from '../activities/providers/index.ts';
import type { Failure, Rejection, SyncReport } from '../contracts/index.ts';

/** Sets `identity` on each item that has none but carries an echo of a valid target; returns the list. */
export function nameItems<T extends Rejection | Failure>(provider: string, items: T[]): T[] {
  const adapter = providerAdapter(provider);
  if (!adapter) return items;
  for (const item of items) {
    if (item.identity !== undefined || item.target === undefined) continue;
    const parsed = adapter.targetSchema.safeParse(item.target);
    if (parsed.success) item.identity = boundedIdentity(adapter, parsed.data);
  }
  return items;
}

/** The report with every rejection and failure named where its echo allows (see nameItems). */
export function nameReportItems(report: SyncReport): SyncReport {
  if (!report || !Array.isArray(report.rejected) || !Array.isArray(report.failed)) return report;
  // Reports of syncs closed before `unchanged` existed count none.
  if (report.counts && typeof report.counts.unchanged !== 'number') report.counts.unchanged = 0;
  nameItems(report.provider, report.rejected);
  nameItems(report.provider, report.failed);
  return report;
}
