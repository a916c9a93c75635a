/**
 * Alerts: what the workflows ask the alert activity to post, the JSON body a webhook receives
 * (documented in docs/alerts.md), and when a closed sync is over its threshold. The webhook's URL
 * is never here: it is a secret of the worker's environment (CATALOG_SYNC_ALERT_WEBHOOK_URL), read
 * by the activity alone. Free of Node-only imports: the workflow bundle takes this module.
 */
import { z } from 'zod';

/**
 * The counts an alert reads: a sync report's `counts` (spelled out here, since contracts/sync.ts
 * imports this module for the threshold option).
 */
export interface AlertCounts {
  submitted: number;
  pending: number;
  accepted: number;
  rejected: number;
  failed: number;
  superseded: number;
}

/** The worker's environment variable holding the webhook URL (a secret: never logged or carried). */
export const ALERT_WEBHOOK_VAR = 'CATALOG_SYNC_ALERT_WEBHOOK_URL';
/** Optional: the Temporal UI's base URL (e.g. http://localhost:8233), so an alert links to the workflow. */
export const ALERT_UI_URL_VAR = 'CATALOG_SYNC_UI_URL';

/** Runs of a schedule that must all have failed before it is paused, by default. */
export const DEFAULT_ALERT_AFTER_FAILED_RUNS = 3;
/** At most this many: a schedule's description lists its last 10 runs. */
export const MAX_ALERT_AFTER_FAILED_RUNS = 10;

const COUNT_MESSAGE = 'alertThreshold.count must be a whole number of targets, 0 or more (e.g. 10)';
const PERCENT_MESSAGE = 'alertThreshold.percent must be a share of the submitted targets from 0 to 100 (e.g. 5)';

/**
 * When a closed sync alerts: rejected + failed above `count` targets, or above `percent` of the
 * submitted ones (either one is enough). Without a threshold, only an aborted sync alerts.
 */
export const AlertThresholdSchema = z
  .strictObject({
    count: z.number({ error: COUNT_MESSAGE }).int({ error: COUNT_MESSAGE }).min(0, { error: COUNT_MESSAGE }).optional(),
    percent: z
      .number({ error: PERCENT_MESSAGE })
      .min(0, { error: PERCENT_MESSAGE })
      .max(100, { error: PERCENT_MESSAGE })
      .optional(),
  })
  .refine((t) => t.count !== undefined || t.percent !== undefined, {
    message: 'alertThreshold needs count (targets) or percent (0-100), e.g. {"percent": 5}; leave it out for no alert',
  });
export type AlertThreshold = z.infer<typeof AlertThresholdSchema>;

export type AlertKind = 'sync_rejections' | 'sync_aborted' | 'schedule_paused';

/** What a workflow asks the alert activity to post; the activity adds `text` and `uiUrl`. */
export interface AlertInput {
  kind: AlertKind;
  /** The sync's workflow ID, or the failed scheduled run's. */
  workflowId: string;
  provider: string;
  counts?: AlertCounts;
  threshold?: AlertThreshold;
  /** Why the sync aborted, or the note the schedule was paused with. */
  reason?: string;
  scheduleId?: string;
}

/** The JSON body the webhook receives (docs/alerts.md). */
export interface AlertBody extends AlertInput {
  /** One human line; Slack-style receivers show it as the message. */
  text: string;
  /** The workflow in the Temporal UI, when the worker knows the UI's address. */
  uiUrl?: string;
}

/** Failure types of the alert activities; the workflow catches them all (an alert never fails a sync). */
export const AlertFailureType = {
  /** Connection refused or reset, a timeout, 408, 429 or 5xx. Retried a few times. */
  AlertWebhookUnavailable: 'AlertWebhookUnavailable',
  /** Any other non-2xx: the receiver will not take it. Not retried. */
  AlertWebhookRefused: 'AlertWebhookRefused',
  /** CATALOG_SYNC_ALERT_WEBHOOK_URL is not an http(s) URL. Not retried. */
  AlertWebhookMisconfigured: 'AlertWebhookMisconfigured',
} as const;
export type AlertFailureType = (typeof AlertFailureType)[keyof typeof AlertFailureType];

/** Rejected + failed targets of a closed sync. */
const unsettled = (c: AlertCounts): number => c.rejected + c.failed;

/** True when the closed sync's rejected + failed targets are above the threshold (count or percent). */
export function overThreshold(c: AlertCounts, threshold: AlertThreshold | undefined): boolean {
  if (threshold === undefined) return false;
  const n = unsettled(c);
  if (threshold.count !== undefined && n > threshold.count) return true;
  return threshold.percent !== undefined && c.submitted > 0 && (n * 100) / c.submitted > threshold.percent;
}

const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

/** The alert's one human line. */
export function alertText(a: AlertInput): string {
  const c = a.counts;
  const tally = c ? `${c.rejected} rejected and ${c.failed} failed of ${c.submitted}` : '';
  switch (a.kind) {
    case 'sync_rejections': {
      const limits = [
        ...(a.threshold?.count !== undefined ? [`${a.threshold.count} targets`] : []),
        ...(a.threshold?.percent !== undefined ? [`${a.threshold.percent}%`] : []),
      ].join(' or ');
      return `catalog-sync: ${a.provider} sync ${a.workflowId} closed with ${tally}, above its alert threshold (${limits})`;
    }
    case 'sync_aborted':
      return `catalog-sync: ${a.provider} sync ${a.workflowId} aborted: ${clip(a.reason ?? 'no reason given', 300)}`;
    case 'schedule_paused':
      return `catalog-sync: schedule ${a.scheduleId ?? '?'} (${a.provider}): ${clip(a.reason ?? 'paused', 600)}`;
  }
}
