export * from './connection.ts';
export * from './sync-client.ts';
export * from '../contracts/index.ts';
export * from './schedules.ts';
