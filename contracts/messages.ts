/** Signals, queries and updates of the sync workflow, defined once for workflow and client. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Resubmission, ResubmissionAnswer } from './resubmission.ts';
import type { SyncReport } from './sync.ts';

export const statusQuery = defineQuery<SyncReport>('status');
export const resubmitSignal = defineSignal<[Resubmission]>('resubmit');
export const resubmitUpdate = defineUpdate<ResubmissionAnswer, [Resubmission]>('resubmitWithAnswer');
export const finishSignal = defineSignal('finish');
