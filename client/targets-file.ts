/**
 * Reads a targets file: a JSON array, or NDJSON (one JSON value a line, blank lines skipped).
 * Errors name the file, the line and the fix.
 */
import { readFile } from 'node:fs/promises';

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
