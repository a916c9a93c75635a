// @ts-check
import js from '@eslint/js';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

/** Import patterns that would point up a layer (see DESIGN.md, "Shape"). */
const NOT_TEST_SIDE = {
  group: ['**/simulators/*', '**/test/*', '**/test/**'],
  message: 'production code never imports simulators/ or test/: move what both need into production code',
};
const NOT_CLIENT_SIDE = {
  group: ['**/client/*', '**/cli/*', '**/http/*', '**/temporal/*', '**/worker/*'],
  message:
    'activities and workflows never import the layers above them: move what both need down (activities/ or contracts/); .dependency-cruiser.cjs has the whole picture',
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', '.artifacts/**', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  { languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['bin/*.js', 'eslint.config.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Production code never leans on the test side: simulators and tests import it, not the reverse.
    files: ['client/**/*.ts', 'cli/**/*.ts', 'http/**/*.ts', 'temporal/**/*.ts', 'worker/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NOT_TEST_SIDE] }] },
  },
  {
    // Activities sit below the client side: what both need moves down to activities or contracts.
    files: ['activities/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NOT_TEST_SIDE, NOT_CLIENT_SIDE] }] },
  },
  {
    // Workflow code is replayed: no Node built-ins, no network, nothing but Temporal's clock.
    files: ['workflows/**/*.ts', 'contracts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'undici'].map((name) => ({
            name,
            message: 'workflow code must stay deterministic: do I/O in activities',
          })),
          patterns: [NOT_TEST_SIDE, NOT_CLIENT_SIDE],
        },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'fetch', 'process'],
    },
  },
);
