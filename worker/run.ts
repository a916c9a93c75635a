/** `npm run worker`: runs a worker with the environment's configuration. */
import { runWorker } from './main.ts';

runWorker().catch((err: unknown) => {
  process.stderr.write(`catalog-sync worker: ${(err as Error).message}\n`);
  process.exit(1);
});
