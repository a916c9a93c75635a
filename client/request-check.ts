/**
 * The one check of a sync request, before anything starts: the CLI, the library's startSync and
 * the HTTP front all call checkSyncRequest and only format its answer. A request-level problem
 * (options, key, provider, duplicates) throws SyncRequestError with one line naming the field, the
 * limit and the fix; problems of single inline targets come back listed, so each front applies
 * its own policy (the CLI refuses, the HTTP front answers partial success).
 */
import type { z } from 'zod';
import { checkTarget, duplicateMessage, sameProduct, shapeProblem } from '../activities/plan.ts';
import type { AnyProviderAdapter } from '../activities/providers/adapter.ts';
import { providerAdapter, providerNames } from '../activities/providers/index.ts';
import { isPlainHttpUrl } from '../activities/providers/octogen.ts';
import { SyncRequestSchema, hasControlChars, isWellFormedText, type SyncRequest } from '../contracts/index.ts';

/** A request the client refuses before anything is started; the message names the field and fix. */
export class SyncRequestError extends Error {
  override readonly name: string = 'SyncRequestError';
}

/** One inline target that would be rejected, never sent: its position, code and reason. */
export interface TargetProblem {
  index: number;
  code: 'invalid_target' | 'target_too_large';
  message: string;
}

export interface CheckedRequest {
  /** The request as parsed (defaults untouched). */
  request: SyncRequest;
  adapter: AnyProviderAdapter;
  /** Inline targets refused one by one (schema, size, encoding); the others may start. */
  problems: TargetProblem[];
}

/** Most targets one inline request may carry (SyncRequestSchema says the same). */
export const MAX_INLINE_TARGETS = 1_000_000;

/** Values echoed in messages: quoted, escaped (never a line break), cut short. */
export const quote = (value: unknown): string => {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
};

/** Makes any message one line: control characters (line breaks among them) escaped. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
export const oneLine = (message: string): string =>
  message.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const valueAt = (root: unknown, path: readonly PropertyKey[]): unknown => {
  let v: unknown = root;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
};

/** A zod issue as one line naming the field, the limit and the fix. */
function issueLine(issue: z.core.$ZodIssue, raw: unknown): string {
  const field = issue.path.map(String).join('.') || 'request';
  let message = issue.message;
  if (issue.code === 'too_big' || issue.code === 'too_small') {
    const limit = Number(issue.code === 'too_big' ? issue.maximum : issue.minimum);
    const value = valueAt(raw, issue.path);
    const has =
      typeof value === 'number'
        ? `is ${value}`
        : Array.isArray(value)
          ? `has ${value.length} items`
          : typeof value === 'string'
            ? `has ${value.length} characters`
            : 'is';
    // Schema messages that already say the limit and the fix are kept as they are.
    if (/^(Too big|Too small)/.test(message)) {
      message =
        issue.code === 'too_big'
          ? `${field} ${has}, over the limit of ${limit}; give at most ${limit}`
          : `${field} ${has}, under the minimum of ${limit}; give at least ${limit}`;
    }
  } else if (issue.code === 'unrecognized_keys') {
    message = `unknown field ${issue.keys.map(quote).join(', ')}; leave it out (see the README's request fields)`;
  }
  return message.startsWith(field) ? message : `${field}: ${message}`;
}

/** Checks text that names a place (a file, a URL) or a key: well-formed and printable. */
function textProblem(field: string, value: string): string | undefined {
  if (!isWellFormedText(value)) return `${field} is not well-formed Unicode (a lone surrogate); send valid UTF-8 text`;
  if (hasControlChars(value)) return `${field} holds a control character; remove it`;
  return undefined;
}

/**
 * Checks targets one at a time, in order, against the provider's schema, its documented size
 * limits and the targets before them (duplicate identities). `remember` bounds the identities
 * kept (a very large file is checked for duplicates among its first `remember` targets; the
 * workers then check each planning page).
 */
export function targetChecker(adapter: AnyProviderAdapter, remember = 1_000_000) {
  const firstAt = new Map<string, string>();
  return {
    /** `where` names the target in messages ("targets[3]", "file.ndjson line 4"). */
    check(
      value: unknown,
      where: string,
    ): { code: 'invalid_target' | 'target_too_large' | 'duplicate_target'; message: string } | undefined {
      const check = checkTarget(adapter, adapter.documentedLimits, value);
      if (!check.ok) return { code: check.code, message: check.message };
      const same = sameProduct(check);
      const first = firstAt.get(same);
      if (first !== undefined) return { code: 'duplicate_target', message: duplicateMessage(check, first) };
      if (firstAt.size < remember) firstAt.set(same, where);
      return undefined;
    },
  };
}

/**
 * Checks a sync request before anything starts. Throws SyncRequestError (one line: the field, the
 * limit and the fix) for a request that must not start at all; returns the inline targets that
 * would be rejected one by one.
 */
export function checkSyncRequest(raw: unknown): CheckedRequest {
  const refuse = (message: string): never => {
    throw new SyncRequestError(oneLine(message));
  };
  // A count over the limit is refused before anything walks the array (a sparse array of 10^8 too).
  const count = (raw as { targets?: unknown } | null)?.targets;
  if (Array.isArray(count) && count.length > MAX_INLINE_TARGETS) {
    refuse(
      `invalid sync request: targets has ${count.length} items, over the limit of ${MAX_INLINE_TARGETS} inline; give a larger catalog by targetsRef (an NDJSON file or URL)`,
    );
  }
  // Encoding and nesting first: zod and the serializers recurse, and a lone surrogate in a key
  // is a field name nobody can read back.
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    for (const [field, value] of Object.entries(raw as Record<string, unknown>)) {
      if (field === 'targets') continue;
      const problem = shapeProblem(value, field);
      if (problem !== undefined) refuse(`invalid sync request: ${problem}`);
    }
  }
  const parsed = SyncRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    refuse(`invalid sync request: ${issue ? issueLine(issue, raw) : 'not a sync request'}`);
  }
  const request = (parsed as { data: SyncRequest }).data;
  const adapter = providerAdapter(request.provider);
  if (!adapter) {
    return refuse(`provider: unknown provider ${quote(request.provider)}; use one of: ${providerNames().join(', ')}`);
  }
  const max = adapter.documentedLimits.maxTargets;
  const batchSize = request.options?.batchSize;
  if (batchSize !== undefined && batchSize > max) {
    refuse(
      `invalid sync request: options.batchSize is ${batchSize}, over ${adapter.title}'s limit of ${max} targets a call; give at most ${max}, or leave it out`,
    );
  }
  const ref = request.targetsRef;
  if (ref !== undefined) {
    const [field, value] = 'file' in ref ? ['targetsRef.file', ref.file] : ['targetsRef.url', ref.url];
    const problem = textProblem(field, value);
    if (problem !== undefined) refuse(`invalid sync request: ${problem}`);
    if ('url' in ref && !isPlainHttpUrl(ref.url)) {
      refuse(
        'invalid sync request: targetsRef.url must be an absolute http(s) URL without spaces or control characters (percent-encode them)',
      );
    }
  }
  const problems: TargetProblem[] = [];
  if (request.targets !== undefined) {
    if (request.targets.length === 0) refuse('targets is empty: give at least one target, or targetsRef');
    const checker = targetChecker(adapter);
    request.targets.forEach((target, index) => {
      const problem = checker.check(target, `targets[${index}]`);
      if (problem === undefined) return;
      // A product named twice is the request's problem, not one target's: refuse it whole.
      if (problem.code === 'duplicate_target') return refuse(`targets[${index}]: ${problem.message}`);
      problems.push({ index, code: problem.code, message: oneLine(problem.message) });
    });
  }
  return { request, adapter, problems };
}

/**
 * The line a front end shows when none of a request's inline targets may be sent: the first
 * problem, and how many more.
 */
export function nothingValidMessage(problems: readonly TargetProblem[]): string {
  const [first] = problems;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more refused targets)` : '';
  return `every target was refused, so nothing was started: targets[${first?.index ?? 0}]: ${first?.message ?? ''}${more}; fix them and send again`;
}
