/**
 * The trust boundary of the HTTP front: a caller over HTTP names no file on the worker, and a URL
 * only under the operator's allowlist (CATALOG_SYNC_SOURCE_URLS), never an internal address unless
 * the list names that host. Checked before anything is read or started; the worker checks again.
 * The CLI and the library may name files: that is the operator's choice, not a caller's.
 */
import { SOURCE_URLS_VAR, refuseSourceUrl } from '../activities/source-policy.ts';
import type { TargetsRef } from '../contracts/index.ts';
import { SyncRequestError } from './request-check.ts';

/** Throws one line naming the field and the fix when an HTTP caller's source may not be read. */
export async function refuseCallerSource(
  ref: TargetsRef | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  if (ref === undefined) return;
  if ('file' in ref) {
    throw new SyncRequestError(
      'targetsRef.file: an HTTP caller cannot name a file on the worker; send the targets inline ' +
        `(targets), or targetsRef.url under a prefix of the operator's allowlist (${SOURCE_URLS_VAR})`,
    );
  }
  let refused: string | undefined;
  try {
    refused = await refuseSourceUrl(ref.url, env);
  } catch (err) {
    refused = `targetsRef.url cannot be checked: ${(err as Error).message}`;
  }
  if (refused !== undefined) throw new SyncRequestError(refused);
}
