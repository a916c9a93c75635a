/**
 * Runs the Octogen simulator alone for a developer: `npx tsx simulators/main.ts`.
 * Port from OCTOGEN_SIM_PORT (default 4010; 0 = any free port). Faults via POST /_sim/faults.
 */
import { DEMO_OCTOGEN_KEY, demoOctogenIndex, startOctogenSimulator } from './octogen.ts';

const rawPort = process.env.OCTOGEN_SIM_PORT ?? '4010';
const port = Number(rawPort);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`OCTOGEN_SIM_PORT must be a port number, got "${rawPort}"\n`);
  process.exit(2);
}

const sim = await startOctogenSimulator({ ...demoOctogenIndex(), port });
// The demo key is sample data, not a secret: printing it is the point.
process.stdout.write(`Octogen simulator listening on ${sim.url} (API key: ${DEMO_OCTOGEN_KEY})\n`);

const stop = (): void => {
  void sim.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
