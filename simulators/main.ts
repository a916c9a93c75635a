/**
 * Runs the provider simulators for a developer: `npx tsx simulators/main.ts`.
 * Octogen on OCTOGEN_SIM_PORT (default 4010), Insider on INSIDER_SIM_PORT (default 4020); 0 = any free
 * port. Faults via POST /_sim/faults on each. INSIDER_SIM_MAX_RECORDS sets the Insider account's
 * hidden record limit (default 1000), answered 400 "Maximum allowed request size is exceeded.".
 */
import { DEMO_INSIDER_PARTNER, DEMO_INSIDER_TOKEN, demoInsiderCatalog, startInsiderSimulator } from './insider.ts';
import { DEMO_OCTOGEN_KEY, demoOctogenIndex, startOctogenSimulator } from './octogen.ts';

function portFromEnv(name: string, fallback: string): number {
  const raw = process.env[name] ?? fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`${name} must be a port number, got "${raw}"\n`);
    process.exit(2);
  }
  return port;
}

const octogenPort = portFromEnv('OCTOGEN_SIM_PORT', '4010');
const insiderPort = portFromEnv('INSIDER_SIM_PORT', '4020');

const sim = await startOctogenSimulator({ ...demoOctogenIndex(), port: octogenPort });
// The demo key is sample data, not a secret: printing it is the point.
process.stdout.write(`Octogen simulator listening on ${sim.url} (API key: ${DEMO_OCTOGEN_KEY})\n`);

const maxRecords = Number(process.env.INSIDER_SIM_MAX_RECORDS ?? '1000');
if (!Number.isInteger(maxRecords) || maxRecords < 1) {
  process.stderr.write(
    `INSIDER_SIM_MAX_RECORDS must be a positive whole number, got "${process.env.INSIDER_SIM_MAX_RECORDS}"\n`,
  );
  process.exit(2);
}
const insider = await startInsiderSimulator({ ...demoInsiderCatalog(), port: insiderPort, maxRecords });
process.stdout.write(
  `Insider simulator listening on ${insider.url} (partner: ${DEMO_INSIDER_PARTNER}, token: ${DEMO_INSIDER_TOKEN})\n`,
);

const stop = (): void => {
  void Promise.all([sim.close(), insider.close()]).then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
