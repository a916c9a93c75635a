/**
 * Validation and batching: which targets may be sent, why the others may not, and how the rest is
 * cut into calls the provider accepts. Pure: the activity wraps it, tests call it directly.
 */
import type { z } from 'zod';
import type { AnyProviderAdapter, BatchLimits } from './providers/adapter.ts';

export interface SequencedTarget {
  seq: number;
  target: unknown;
}

export interface PlannedRejection {
  seq: number;
  code: string;
  message: string;
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

export function planTargets(
  adapter: AnyProviderAdapter,
  limits: BatchLimits,
  items: SequencedTarget[],
  batchSize?: number,
): Plan {
  const maxTargets = Math.min(batchSize ?? limits.maxTargets, limits.maxTargets);
  const { maxBytes, maxTargetBytes } = limits;
  const valid: Plan['valid'] = [];
  const rejections: PlannedRejection[] = [];
  // Groups keep first-appearance order so batches follow the caller's order within a group.
  const groups = new Map<string, { seq: number; bytes: number }[]>();

  for (const { seq, target } of items) {
    const parsed = adapter.targetSchema.safeParse(target);
    if (!parsed.success) {
      rejections.push({
        seq,
        code: 'invalid_target',
        message: describeIssues(parsed.error),
      });
      continue;
    }
    const bytes = maxBytes !== undefined || maxTargetBytes !== undefined ? jsonBytes(parsed.data) : 0;
    if (maxTargetBytes !== undefined && bytes > maxTargetBytes) {
      rejections.push({
        seq,
        code: 'target_too_large',
        message: `target is ${bytes} bytes of JSON, over ${adapter.title}'s limit of ${maxTargetBytes} a record; shorten its fields`,
      });
      continue;
    }
    valid.push({ seq, identity: adapter.identity(parsed.data) });
    const key = adapter.groupKey(parsed.data);
    const group = groups.get(key);
    if (group) group.push({ seq, bytes });
    else groups.set(key, [{ seq, bytes }]);
  }

  const batches: number[][] = [];
  for (const group of groups.values()) {
    let batch: number[] = [];
    let batchBytes = 2; // the enclosing brackets
    for (const { seq, bytes } of group) {
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
