/**
 * The Temporal UI as the operator's console, in a real browser: headless Chromium (Debian's
 * package, driven by playwright-core) opens the dev server's UI, filters syncs by the project's
 * search attributes, opens one and sees its summary and rejected count. The screenshot is kept in
 * .artifacts/ as the test's artifact. Payloads are encrypted by the codec; the UI decodes them
 * through the codec server.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, inject, it } from 'vitest';
import { startCodecServer } from '../temporal/codec-server.ts';
import { codecFromEnv, type AesGcmCodec } from '../temporal/codec.ts';
import { awaitFirstPass, finish, startSync } from '../client/index.ts';
import { startDevServer, type DevServer } from '../scripts/dev-server.ts';
import { projectRoot } from '../scripts/temporal-bin.ts';
import { makeOctogenProducts, startOctogenSimulator, type OctogenSimulator } from '../simulators/octogen.ts';
import { createSyncWorker, type SyncWorker } from '../worker/worker.ts';
import { uniqueKey, uniqueTaskQueue } from './helpers/temporal.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const KEY = 'ui-test-key';
const products = makeOctogenProducts('alpha', 3);

let server: DevServer;
let sim: OctogenSimulator;
let browser: Browser;
let connection: Connection;
let native: NativeConnection;
let worker: SyncWorker;
let running: Promise<void>;
let codecServer: { url: string; close(): Promise<void> };
const codec = codecFromEnv({ CATALOG_SYNC_CODEC_KEYS: `ui:${randomBytes(32).toString('base64')}` }) as AesGcmCodec;
const taskQueue = uniqueTaskQueue('ui');

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: run \`bash scripts/install-browser.sh\` or set CHROMIUM_PATH`);
  }
  // This suite needs the UI, which the shared test server runs without, and the UI decodes the
  // (encrypted) payloads through the codec server, as an operator's would.
  codecServer = await startCodecServer(codec, { corsOrigin: '*' });
  server = await startDevServer({ log: 'quiet', uiCodecEndpoint: codecServer.url });
  sim = await startOctogenSimulator({ keys: { [KEY]: ['alpha'] }, products });
  connection = await Connection.connect({ address: server.address });
  native = await NativeConnection.connect({ address: server.address });
  worker = await createSyncWorker({
    dataConverter: { payloadCodecs: [codec] },
    connection: native,
    namespace: server.namespace,
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath'),
    activityDeps: { env: { OCTOGEN_BASE_URL: sim.url, OCTOGEN_PLATFORM_API_KEY: KEY } },
  });
  running = worker.run();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  worker?.shutdown();
  await running;
  await native?.close();
  await connection?.close();
  await sim?.close();
  await server?.stop();
  await codecServer?.close();
});

it('filters syncs by search attribute in the Temporal UI and shows a sync with its summary and rejections', async () => {
  const client = new Client({ connection, namespace: server.namespace, dataConverter: { payloadCodecs: [codec] } });
  const key = uniqueKey('ui');
  const { workflowId } = await startSync(
    client,
    { provider: 'octogen', key, targets: [{ uuid: products[0]!.uuid }, { url: 'https://alpha.com/products/missing' }] },
    taskQueue,
  );
  await awaitFirstPass(client, workflowId);

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const query = `CatalogSyncProvider = 'octogen' AND CatalogSyncRejected > 0`;
  const list = `${server.uiUrl}/namespaces/${server.namespace}/workflows?query=${encodeURIComponent(query)}`;
  // Visibility is eventually consistent: reload until the sync is listed.
  const link = page.getByRole('link', { name: workflowId });
  for (let attempt = 0; attempt < 10; attempt += 1) {
    await page.goto(list);
    const shown = await link
      .first()
      .waitFor({ state: 'visible', timeout: 5000 })
      .then(() => true)
      .catch(() => false);
    if (shown) break;
  }
  await link.first().waitFor({ state: 'visible', timeout: 1000 });
  await link.first().click();
  await page.waitForURL(/\/workflows\/.+/);
  // The activity summary shows on the timeline; the sync's summary and details under User Metadata.
  await page
    .getByText('octogen batch 1/1, 2 targets')
    .filter({ visible: true })
    .first()
    .waitFor({ state: 'visible', timeout: 15_000 });
  // The stored input is ciphertext; the UI shows it decoded through the codec server.
  await page
    .getByText('"https://alpha.com/products/missing"')
    .filter({ visible: true })
    .first()
    .waitFor({ state: 'visible', timeout: 15_000 });
  await page.getByTestId('user-metadata-tab').click();
  await page.waitForURL(/\/user-metadata$/);
  // The UI renders summary and current details as markdown, each in a sandboxed frame.
  await page
    .frameLocator('#user-metadata-summary')
    .getByText(`octogen sync of 2 targets (key ${key})`)
    .waitFor({ state: 'visible', timeout: 15_000 });
  await page
    .frameLocator('#user-metadata-current-details')
    .getByText(/open for re-submission until .*: 1 rejected and 0 failed to fix/)
    .waitFor({ state: 'visible', timeout: 15_000 });
  const artifacts = path.join(projectRoot(), '.artifacts');
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, 'temporal-ui-sync.png'), fullPage: true });
  await finish(client, workflowId);
});
