/**
 * Locates the Temporal CLI (`temporal`) and the Java time-skipping test server
 * (`temporal-test-server`) that `scripts/install-temporal.sh` installs under `<project>/.tools/`.
 *
 * Resolution order (first hit wins):
 *   1. an explicit env var (`TEMPORAL_CLI_PATH` / `TEMPORAL_TEST_SERVER_PATH`)
 *   2. `<project>/.tools/venv/bin/<name>`   (pip route)
 *   3. `<project>/.tools/bin/<name>`        (`go install` route)
 *   4. `<name>` on PATH
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const IS_WINDOWS = process.platform === 'win32';

/** Absolute path of the project root (the folder holding `scripts/`). */
export function projectRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, IS_WINDOWS ? constants.F_OK : constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function withExeSuffixes(file: string): string[] {
  return IS_WINDOWS ? [`${file}.exe`, file] : [file];
}

function findOnPath(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    for (const candidate of withExeSuffixes(path.join(dir, name))) {
      if (isExecutableFile(candidate)) return path.resolve(candidate);
    }
  }
  return undefined;
}

function resolveBinary(name: string, envVar: string): string | undefined {
  const fromEnv = process.env[envVar];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!isExecutableFile(fromEnv)) {
      throw new Error(`${envVar} is set to ${JSON.stringify(fromEnv)}, which is not an executable file`);
    }
    return path.resolve(fromEnv);
  }
  const root = projectRoot();
  const local = [
    path.join(root, '.tools', 'venv', IS_WINDOWS ? 'Scripts' : 'bin', name),
    path.join(root, '.tools', 'bin', name),
  ];
  for (const file of local) {
    for (const candidate of withExeSuffixes(file)) {
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return findOnPath(name);
}

/**
 * Path of the `temporal` CLI.
 * @throws Error when none is found (or `TEMPORAL_CLI_PATH` names something that is not executable).
 */
export function temporalCliPath(): string {
  const found = resolveBinary('temporal', 'TEMPORAL_CLI_PATH');
  if (found === undefined) {
    throw new Error('Temporal CLI not found: run `bash scripts/install-temporal.sh` or set TEMPORAL_CLI_PATH');
  }
  return found;
}

/** Path of the `temporal-test-server` binary (time-skipping test server), or undefined when not installed. */
export function temporalTestServerPath(): string | undefined {
  return resolveBinary('temporal-test-server', 'TEMPORAL_TEST_SERVER_PATH');
}
