/**
 * Reads a targets file: a JSON array, or NDJSON (one JSON value a line, blank lines skipped).
 * Errors name the file, the line and the fix.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';

export class TargetsFileError extends Error {
  override readonly name = 'TargetsFileError';
}

export interface FileTarget {
  /** 1-based line of the target in the file (for messages), or its array position for JSON. */
  line: number;
  value: unknown;
}

export function parseTargets(text: string, file: string): FileTarget[] {
  const trimmed = text.trimStart();
  if (trimmed === '') throw new TargetsFileError(`${file} is empty: give a JSON array or NDJSON of targets`);
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new TargetsFileError(
        `${file} is not valid JSON (${(err as Error).message}): give a JSON array or NDJSON of targets`,
      );
    }
    if (!Array.isArray(parsed)) throw new TargetsFileError(`${file} must hold a JSON array of targets`);
    return parsed.map((value, i) => ({ line: i + 1, value }));
  }
  const out: FileTarget[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    try {
      out.push({ line: i + 1, value: JSON.parse(line) });
    } catch (err) {
      throw new TargetsFileError(
        `${file} line ${i + 1} is not JSON (${(err as Error).message}): give a JSON array, or one JSON target per line`,
      );
    }
  });
  return out;
}

export async function readTargetsFile(file: string): Promise<FileTarget[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TargetsFileError(
      `cannot read targets file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return parseTargets(text, file);
}

/** True for an NDJSON file too large to send inline: the CLI passes it by reference instead. */
export async function isLargeNdjson(file: string, limitBytes: number): Promise<boolean> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (err) {
    throw new TargetsFileError(
      `cannot read targets file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (size <= limitBytes) return false;
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    return !buffer.subarray(0, bytesRead).toString('utf8').trimStart().startsWith('[');
  } finally {
    await handle.close();
  }
}

/** What scanNdjson asks of each target: a problem (its code and message), or none. */
export interface LineChecker {
  check(value: unknown, where: string): { code: string; message: string } | undefined;
}

/**
 * Reads an NDJSON file line by line without holding it, checking every target; returns how many
 * targets it holds, the problems found (the first few, and how many in all) and the first
 * `duplicate_target` problem.
 */
export async function scanNdjson(
  file: string,
  checker: LineChecker,
  keep = 5,
): Promise<{ targets: number; problems: string[]; problemCount: number; duplicate?: string }> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  let targets = 0;
  let problemCount = 0;
  const problems: string[] = [];
  let duplicate: string | undefined;
  const problem = (text: string) => {
    problemCount += 1;
    if (problems.length < keep) problems.push(text);
  };
  for await (const raw of lines) {
    line += 1;
    if (raw.trim() === '') continue;
    targets += 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      problem(`${file} line ${line} is not JSON (${(err as Error).message})`);
      continue;
    }
    const issue = checker.check(value, `line ${line}`);
    if (issue === undefined) continue;
    const text = `${file} line ${line}: ${issue.message}`;
    problem(text);
    if (issue.code === 'duplicate_target') duplicate ??= text;
  }
  return { targets, problems, problemCount, ...(duplicate !== undefined ? { duplicate } : {}) };
}
