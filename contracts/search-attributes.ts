/**
 * Typed search attributes a sync upserts as it progresses, so operators can filter syncs in the
 * Temporal UI. SQLite visibility allows 10 Keyword and 3 Int attributes a namespace: keep within.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA_PROVIDER = defineSearchAttributeKey('CatalogSyncProvider', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('CatalogSyncPhase', SearchAttributeType.KEYWORD);
export const SA_ACCEPTED = defineSearchAttributeKey('CatalogSyncAccepted', SearchAttributeType.INT);
export const SA_REJECTED = defineSearchAttributeKey('CatalogSyncRejected', SearchAttributeType.INT);
export const SA_FAILED = defineSearchAttributeKey('CatalogSyncFailed', SearchAttributeType.INT);
/**
 * What a workflow is, so queries find exactly the syncs: `sync` (however started: CLI, library,
 * HTTP front, schedule), `slice` (a part of a large sync), `scheduled-run` (the wrapper a schedule
 * starts, whose sync is `<its id>/sync`).
 */
export const SA_KIND = defineSearchAttributeKey('CatalogSyncKind', SearchAttributeType.KEYWORD);
/** The schedule that started a sync (and its wrapper). */
export const SA_SCHEDULE = defineSearchAttributeKey('CatalogSyncSchedule', SearchAttributeType.KEYWORD);

export type WorkflowKind = 'sync' | 'slice' | 'scheduled-run';

/** Name and CLI type of each attribute, for `temporal server start-dev --search-attribute`. */
export const SEARCH_ATTRIBUTES: { name: string; cliType: 'Keyword' | 'Int' }[] = [
  { name: SA_PROVIDER.name, cliType: 'Keyword' },
  { name: SA_PHASE.name, cliType: 'Keyword' },
  { name: SA_ACCEPTED.name, cliType: 'Int' },
  { name: SA_REJECTED.name, cliType: 'Int' },
  { name: SA_FAILED.name, cliType: 'Int' },
  { name: SA_KIND.name, cliType: 'Keyword' },
  { name: SA_SCHEDULE.name, cliType: 'Keyword' },
];
