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

/** Limits that keep a sync's history bounded however it is corrected. */
export const MAX_ITEMS_PER_RESUBMISSION = 10_000;
export const MAX_RESUBMITTED_PER_SYNC = 100_000;

export const ResubmissionSchema = z
  .object({
    items: z.array(ResubmissionItemSchema).min(1, 'at least one corrected target'),
  })
  .strict();
export type Resubmission = z.infer<typeof ResubmissionSchema>;

export interface RefusedItem {
  /** Position of the item in the re-submission. */
  index: number;
  fixes?: string;
  code: string;
  message: string;
}

export interface ResubmissionAnswer {
  /** Target ids given to the items taken, in item order, with the rejection each supersedes. */
  taken: { index: number; id: string; supersedes: string }[];
  refused: RefusedItem[];
}
