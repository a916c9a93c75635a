export * from './errors.ts';
export * from './messages.ts';
export * from './resubmission.ts';
export * from './sync.ts';
export * from './search-attributes.ts';
export * from './ledger.ts';
export * from './priority.ts';
