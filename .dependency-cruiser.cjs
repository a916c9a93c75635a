/**
 * The layers, written once: every import points down, never up and never in a circle.
 *
 *   cli/  http/                 the CLI; the HTTP front
 *     └→ client/                the typed library other services import
 *          └→ temporal/         connection settings, the payload codec (and its server)
 *   worker/                     the worker process
 *     └→ workflows/             deterministic workflow code (activities by `import type` only)
 *          └→ activities/       provider calls, sources, the spool
 *               └→ contracts/   types, schemas, messages both sides import
 *   simulators/, test/, bench/, chaos/, scripts/   tools: may import the product, never imported by it
 *
 * `npm test` runs it (`npm run deps`).
 */
const PRODUCT = '^(cli|http|client|temporal|worker|workflows|activities|contracts)/';
const TOOLS = '^(simulators|test|bench|chaos|scripts)/';

/** For each layer, the layers it must not import. */
const above = {
  contracts: ['cli', 'http', 'client', 'temporal', 'worker', 'workflows', 'activities'],
  activities: ['cli', 'http', 'client', 'temporal', 'worker', 'workflows'],
  workflows: ['cli', 'http', 'client', 'temporal', 'worker'],
  temporal: ['cli', 'http', 'client', 'worker', 'workflows'],
  client: ['cli', 'http', 'worker'],
  worker: ['cli', 'http', 'client'],
  http: ['cli', 'worker'],
  cli: ['http'],
};

module.exports = {
  forbidden: [
    ...Object.entries(above).map(([layer, forbidden]) => ({
      name: `${layer}-imports-down-only`,
      comment: `${layer}/ imports only layers below it (see the picture at the top of this file)`,
      severity: 'error',
      from: { path: `^${layer}/` },
      to: { path: `^(${forbidden.join('|')})/` },
    })),
    {
      name: 'workflows-import-activities-as-types',
      comment: 'workflow code is deterministic: activities come in by `import type` only (proxyActivities)',
      severity: 'error',
      from: { path: '^workflows/' },
      to: { path: '^activities/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'product-never-imports-tools',
      comment: 'production code never leans on the simulators, the tests or the scripts',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: TOOLS },
    },
    {
      name: 'no-circular',
      comment: 'no circle of imports, through types included',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.artifacts|\\.tools|\\.data)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
