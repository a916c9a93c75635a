/**
 * `catalog-sync setup`: registers the CatalogSync* search attributes on a namespace, idempotently
 * (those already there are left as they are). Temporal Cloud creates a namespace's attributes in
 * its own console or with `tcld`, not through the operator API: the error says so.
 */
import { isGrpcServiceError, type Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../contracts/index.ts';

export const SETUP_COMMAND = 'catalog-sync setup';

/** The one line a start refused for want of the attributes gets: the exact command that fixes it. */
export const missingAttributesMessage = (namespace: string): string =>
  `the namespace "${namespace}" has not registered the CatalogSync* search attributes: run ` +
  `\`TEMPORAL_NAMESPACE=${namespace} ${SETUP_COMMAND}\` once (or set CATALOG_SYNC_SEARCH_ATTRIBUTES=off to sync without them)`;

/** True when a start failed because the namespace lacks a search attribute the request set. */
export function isMissingSearchAttribute(err: unknown): boolean {
  const texts: string[] = [];
  for (let e: unknown = err; e instanceof Error && texts.length < 5; e = (e as { cause?: unknown }).cause) {
    texts.push(e.message, (e as { details?: string }).details ?? '');
  }
  return texts.some((t) => /search attribute/i.test(t));
}

export interface SetupResult {
  namespace: string;
  added: string[];
  present: string[];
}

const { IndexedValueType } = proto.temporal.api.enums.v1;
const indexedType = (cliType: 'Keyword' | 'Int') =>
  cliType === 'Int' ? IndexedValueType.INDEXED_VALUE_TYPE_INT : IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;

export async function registerSearchAttributes(client: Client, namespace: string): Promise<SetupResult> {
  const operator = client.connection.operatorService;
  const listed = await operator.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(listed.customAttributes ?? {}));
  const missing = SEARCH_ATTRIBUTES.filter((sa) => !have.has(sa.name));
  if (missing.length > 0) {
    try {
      await operator.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map((sa) => [sa.name, indexedType(sa.cliType)])),
      });
    } catch (err) {
      if (isGrpcServiceError(err) && (err.code === 7 || err.code === 12)) {
        // PERMISSION_DENIED / UNIMPLEMENTED: Temporal Cloud, or a user without operator rights.
        throw new Error(
          `cannot add search attributes to "${namespace}" (${err.details}): on Temporal Cloud add ` +
            missing.map((sa) => `${sa.name} (${sa.cliType})`).join(', ') +
            ' in the Cloud UI or with `tcld namespace search-attributes add`; elsewhere ask an operator with admin rights',
          { cause: err },
        );
      }
      throw err;
    }
  }
  return {
    namespace,
    added: missing.map((sa) => sa.name),
    present: SEARCH_ATTRIBUTES.filter((sa) => have.has(sa.name)).map((sa) => sa.name),
  };
}
