export { syncWorkflow } from './sync.ts';
export { syncSliceWorkflow } from './slice.ts';
export { scheduledSyncWorkflow } from './scheduled.ts';
export { governorWorkflow } from './governor.ts';
