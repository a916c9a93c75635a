import { z } from 'zod';

/**
 * A corrected target sent while the sync is open. `fixes` names the rejection it replaces by the
 * report's id ("t12"); without it the provider's identity (Octogen: the same url or uuid) finds it.
 */
export const ResubmissionItemSchema = z
  .object({
    fixes: z
      .string()
      .regex(/^t\d+$/, 'a target id from the report, such as "t12"')
      .optional(),
    target: z.unknown(),
  })
  .strict();
export type ResubmissionItem = z.infer<typeof ResubmissionItemSchema>;

/**
 * Limits that keep a sync's history bounded however it is corrected. One re-submission carries at
 * most MAX_ITEMS_PER_RESUBMISSION items and MAX_RESUBMISSION_BYTES of JSON (UTF-8), so its input
 * and its answer (every item's index and code) each stay well under Temporal's payload limits.
 */
export const MAX_ITEMS_PER_RESUBMISSION = 2_000;
export const MAX_RESUBMISSION_BYTES = 256_000;
export const MAX_RESUBMITTED_PER_SYNC = 100_000;

/** Bytes of a value as UTF-8 JSON: what it weighs in a Temporal payload. */
export function jsonBytes(value: unknown): number {
  const s = JSON.stringify(value);
  if (s === undefined) return 0;
  let n = s.length;
  for (let i = 0; i < s.length; i += 1) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 2; // a surrogate pair: 4 bytes for 2 code units
      i += 1;
    } else n += 2;
  }
  return n;
}

/** 12345 -> "12,345" (no Intl: this module runs in the workflow sandbox too). */
export const formatCount = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** The one line every channel says when a re-submission is over a limit. */
export const resubmissionLimitMessage = (what: string): string =>
  `${what}; split it into re-submissions of at most ${formatCount(MAX_ITEMS_PER_RESUBMISSION)} items and ${formatCount(MAX_RESUBMISSION_BYTES)} bytes of JSON each`;

export const ResubmissionSchema = z
  .object({
    items: z
      .array(ResubmissionItemSchema)
      .min(1, 'at least one corrected target')
      .max(
        MAX_ITEMS_PER_RESUBMISSION,
        resubmissionLimitMessage(`at most ${formatCount(MAX_ITEMS_PER_RESUBMISSION)} items per re-submission`),
      ),
  })
  .strict()
  .superRefine((r, ctx) => {
    const bytes = jsonBytes(r);
    if (bytes > MAX_RESUBMISSION_BYTES) {
      ctx.addIssue({
        code: 'custom',
        path: ['items'],
        message: resubmissionLimitMessage(
          `${formatCount(bytes)} bytes of JSON, over the limit of ${formatCount(MAX_RESUBMISSION_BYTES)} bytes per re-submission`,
        ),
      });
    }
  });
export type Resubmission = z.infer<typeof ResubmissionSchema>;

export type ResubmissionCheck = { success: true; data: Resubmission } | { success: false; message: string };

/**
 * The shared check of a re-submission (library, CLI, HTTP front, workflow): the item and byte
 * limits first, before any item is parsed, then the schema. The message is one line naming the
 * field, the limit and the fix.
 */
/** The shape a re-submission takes, in one line, for messages that refuse another. */
export const RESUBMISSION_SHAPE =
  '{"items":[{"target":{...the corrected target...},"fixes":"t3"}]} ("fixes" optional: the rejected target id it replaces)';

export function checkResubmission(raw: unknown): ResubmissionCheck {
  const items = (raw as { items?: unknown } | null | undefined)?.items;
  if (Array.isArray(items) && items.length > MAX_ITEMS_PER_RESUBMISSION) {
    return {
      success: false,
      message: `items: ${resubmissionLimitMessage(`${formatCount(items.length)} items, over the limit of ${formatCount(MAX_ITEMS_PER_RESUBMISSION)} per re-submission`)}`,
    };
  }
  const bytes = jsonBytes(raw);
  if (bytes > MAX_RESUBMISSION_BYTES) {
    return {
      success: false,
      message: `items: ${resubmissionLimitMessage(`${formatCount(bytes)} bytes of JSON, over the limit of ${formatCount(MAX_RESUBMISSION_BYTES)} bytes per re-submission`)}`,
    };
  }
  const parsed = ResubmissionSchema.safeParse(raw);
  if (parsed.success) return { success: true, data: parsed.data };
  const issues = parsed.error.issues;
  const first = issues[0];
  const more = issues.length > 1 ? ` (and ${formatCount(issues.length - 1)} more problems)` : '';
  const where = first?.path.join('.') || 'items';
  return {
    success: false,
    message: `${clipText(`${where}: ${first?.message ?? 'invalid'}${more}`, 300)}; expected ${RESUBMISSION_SHAPE}`,
  };
}

/** A message cut to `max` characters, saying so. */
export function clipText(s: string, max: number): string {
  if (s.length <= max) return s;
  let cut = s.slice(0, Math.max(0, max - 3));
  // Never end on half a surrogate pair: the result must stay well-formed text.
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}...`;
}

export interface RefusedItem {
  /** Position of the item in the re-submission (-1: the whole re-submission was refused). */
  index: number;
  fixes?: string;
  code: string;
  message: string;
}

export interface ResubmissionAnswer {
  /** Target ids given to the items taken, in item order, with the rejection each supersedes. */
  taken: { index: number; id: string; supersedes: string }[];
  /** Every refused item, by index and code; messages are cut short when the answer would be too large. */
  refused: RefusedItem[];
}

/** Bytes an update answer (and a report's lists) may take: well under Temporal's 2 MB payload limit. */
export const ANSWER_BYTES = 200 * 1024;
