/**
 * Validation and batching: which targets may be sent, why the others may not, and how the rest is
 * cut into calls the provider accepts. Pure: the activity wraps it, tests call it directly.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { isWellFormedText } from '../contracts/sync.ts';
import type { AnyProviderAdapter, BatchLimits } from './providers/adapter.ts';

export interface SequencedTarget {
  seq: number;
  target: unknown;
  /**
   * How messages name the target ("line 12" of a source, "t12"); without it, "line <line>" when
   * `line` is given, else "item <seq>" (a re-submission's items are planned with their positions
   * as sequence numbers).
   */
  label?: string;
  /** The source line (by reference): names the target when it has no label. */
  line?: number | undefined;
}

/** How a duplicate's message names the first target (built only when a duplicate is found). */
const labelOf = (t: SequencedTarget): string => t.label ?? (t.line !== undefined ? `line ${t.line}` : `item ${t.seq}`);

export interface PlannedRejection {
  seq: number;
  code: string;
  message: string;
  /** The provider's identity of the item, when the target parsed (a duplicate). */
  identity?: string;
}

export interface Plan {
  /** The identity of every valid target, in input order. */
  valid: { seq: number; identity: string }[];
  rejections: PlannedRejection[];
  /** Sequence numbers per batch, each batch within the provider's limits and one group. */
  batches: number[][];
}

/** One line per problem, each naming the field (when the schema's message does not already). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      return path && !issue.message.startsWith(path) ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

const fieldName = (field: string, path: string): string => {
  const parts = [field, path].filter(Boolean).join('.').split('.');
  return parts.length > 6 ? `${parts.slice(0, 3).join('.')}...` : parts.join('.') || 'target';
};

/** True for an object whose keys and values are well-formed text or other plain values, one level deep. */
function isFlatWellFormed(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const v = (value as Record<string, unknown>)[key];
    if (typeof v === 'object' && v !== null) return false;
    if (!isWellFormedText(key) || (typeof v === 'string' && !isWellFormedText(v))) return false;
  }
  return true;
}

/** Deeper than this, a target is refused before any schema or serializer recurses into it. */
export const MAX_TARGET_DEPTH = 32;

/**
 * The first string (or object key) that is not well-formed Unicode, or the first value nested
 * deeper than MAX_TARGET_DEPTH, as a message naming its field (under `field`, when given).
 * Iterative: no input can overflow it.
 */
export function shapeProblem(value: unknown, field = ''): string | undefined {
  if (isFlatWellFormed(value)) return undefined; // the common target: one level of plain values
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: '', depth: 0 }];
  const name = (path: string) => fieldName(field, path);
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop() as { v: unknown; path: string; depth: number };
    if (typeof v === 'string') {
      if (!isWellFormedText(v))
        return `${name(path)} is not well-formed Unicode (a lone surrogate); send valid UTF-8 text`;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= MAX_TARGET_DEPTH)
      return `${name(path)} is nested more than ${MAX_TARGET_DEPTH} levels deep; flatten it`;
    const entries: [string, unknown][] = Array.isArray(v)
      ? v.map((x, i) => [String(i), x])
      : Object.entries(v as Record<string, unknown>);
    for (const [k, x] of entries) {
      if (!isWellFormedText(k))
        return `${name(path)} has a key that is not well-formed Unicode (a lone surrogate); send valid UTF-8 text`;
      stack.push({ v: x, path: path ? `${path}.${k}` : k, depth: depth + 1 });
    }
  }
  return undefined;
}

export type TargetCheck =
  | { ok: true; data: unknown; identity: string; groupKey: string; bytes: number }
  | { ok: false; code: 'invalid_target' | 'target_too_large'; message: string };

/**
 * One target against the provider: its shape, its schema and its size. The client runs it before
 * anything starts (with the provider's documented limits), the worker again when it plans.
 */
export function checkTarget(adapter: AnyProviderAdapter, limits: BatchLimits, target: unknown): TargetCheck {
  const shape = shapeProblem(target);
  if (shape !== undefined) return { ok: false, code: 'invalid_target', message: shape };
  const parsed = adapter.targetSchema.safeParse(target);
  if (!parsed.success) return { ok: false, code: 'invalid_target', message: describeIssues(parsed.error) };
  const { maxBytes, maxTargetBytes } = limits;
  const bytes = maxBytes !== undefined || maxTargetBytes !== undefined ? jsonBytes(parsed.data) : 0;
  if (maxTargetBytes !== undefined && bytes > maxTargetBytes) {
    return {
      ok: false,
      code: 'target_too_large',
      message: `target is ${bytes} bytes of JSON, over ${adapter.title}'s limit of ${maxTargetBytes} a record; shorten its fields`,
    };
  }
  return {
    ok: true,
    data: parsed.data,
    identity: boundedIdentity(adapter, parsed.data),
    groupKey: adapter.groupKey(parsed.data),
    bytes,
  };
}

/** Longest identity carried in plans and answers (Octogen URLs may be 2,048 characters). */
export const IDENTITY_LIMIT = 256;

/**
 * A target's identity, short enough to carry in every result: a long one keeps its start and a
 * digest of the whole, so re-submissions still match it (both sides derive it here).
 */
export function boundedIdentity<T>(adapter: { identity(target: T): string }, target: T): string {
  const full = adapter.identity(target);
  if (full.length <= IDENTITY_LIMIT) return full;
  const digest = createHash('sha256').update(full, 'utf8').digest('hex').slice(0, 32);
  return `${full.slice(0, IDENTITY_LIMIT - 40)}...#${digest}`;
}

/** The rejection of a target whose product an earlier target of the same sync already names. */
export const duplicateMessage = (t: { identity: string; groupKey: string }, first: string): string =>
  `the same product (${t.identity}${t.groupKey ? ` in ${JSON.stringify(t.groupKey)}` : ''}) as ${first}: a sync takes one update per product; merge the two, or send the second in a later sync`;

/**
 * What makes two targets the same product: the identity within the group (Octogen's pinned
 * catalog: one URL pinned to two catalogs names two products).
 */
export const sameProduct = (t: { identity: string; groupKey: string }): string => `${t.groupKey}\u0000${t.identity}`;

/**
 * Validates and batches. A target whose identity an earlier one of `items` has is rejected as
 * `duplicate_target` naming the first (its line, or its target id): the scope is one call, so one
 * planning page of a source (1,000 targets) or one re-submission; the client refuses duplicates of
 * an inline request before anything starts.
 */
export function planTargets(
  adapter: AnyProviderAdapter,
  limits: BatchLimits,
  items: SequencedTarget[],
  batchSize?: number,
  /** When given, receives each valid target in its parsed form (what the adapter sends). */
  parsed?: Map<number, unknown>,
): Plan {
  const maxTargets = Math.min(batchSize ?? limits.maxTargets, limits.maxTargets);
  const { maxBytes } = limits;
  const valid: Plan['valid'] = [];
  const rejections: PlannedRejection[] = [];
  // Groups keep first-appearance order so batches follow the caller's order within a group.
  // (Sequence numbers and sizes in two flat lists a group: a page has a thousand targets.)
  const groups = new Map<string, { seqs: number[]; bytes: number[] }>();
  const firstOf = new Map<string, SequencedTarget>();

  for (const item of items) {
    const { seq, target } = item;
    const check = checkTarget(adapter, limits, target);
    if (!check.ok) {
      rejections.push({ seq, code: check.code, message: check.message });
      continue;
    }
    const same = sameProduct(check);
    const first = firstOf.get(same);
    if (first) {
      const where = labelOf(first);
      rejections.push({
        seq,
        code: 'duplicate_target',
        message: duplicateMessage(check, where),
        identity: check.identity,
      });
      continue;
    }
    firstOf.set(same, item);
    parsed?.set(seq, check.data);
    valid.push({ seq, identity: check.identity });
    const group = groups.get(check.groupKey);
    if (group) {
      group.seqs.push(seq);
      group.bytes.push(check.bytes);
    } else groups.set(check.groupKey, { seqs: [seq], bytes: [check.bytes] });
  }

  const batches: number[][] = [];
  for (const { seqs, bytes: sizes } of groups.values()) {
    let batch: number[] = [];
    let batchBytes = 2; // the enclosing brackets
    for (let i = 0; i < seqs.length; i += 1) {
      const seq = seqs[i] as number;
      const bytes = sizes[i] as number;
      const over = batch.length >= maxTargets || (maxBytes !== undefined && batchBytes + bytes + 1 > maxBytes);
      if (over && batch.length > 0) {
        batches.push(batch);
        batch = [];
        batchBytes = 2;
      }
      batch.push(seq);
      batchBytes += bytes + 1;
    }
    if (batch.length > 0) batches.push(batch);
  }
  return { valid, rejections, batches };
}
