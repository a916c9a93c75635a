export { syncWorkflow } from './sync.ts';
