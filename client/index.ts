export * from '../temporal/connection.ts';
export * from './sync-client.ts';
export * from '../contracts/index.ts';
export * from './schedules.ts';
export * from './request-check.ts';
export * from './dry-run.ts';
