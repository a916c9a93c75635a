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

/** Name and CLI type of each attribute, for `temporal server start-dev --search-attribute`. */
export const SEARCH_ATTRIBUTES: { name: string; cliType: 'Keyword' | 'Int' }[] = [
  { name: SA_PROVIDER.name, cliType: 'Keyword' },
  { name: SA_PHASE.name, cliType: 'Keyword' },
  { name: SA_ACCEPTED.name, cliType: 'Int' },
  { name: SA_REJECTED.name, cliType: 'Int' },
  { name: SA_FAILED.name, cliType: 'Int' },
];
