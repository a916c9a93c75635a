/**
 * Small disks for the disk-full scenarios (state-store.ts, spool-full.ts): a tmpfs mounted under
 * the run's folder, and a file that fills it to the last byte.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';

/** Mounts a tmpfs of `size` (`32m`) at `mount` (needs root: a run without it says so). */
export function mountTmpfs(mount: string, size: string, mode: string): string {
  mkdirSync(mount, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=${mode}`, 'tmpfs', mount], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `cannot mount a tmpfs for the disk-full scenario (needs root): ${String((err as { stderr?: unknown }).stderr ?? err).trim()}`,
      { cause: err },
    );
  }
  return mount;
}

/** Unmounts (lazily: a worker may still hold a file open) and removes the folder; gone already is fine. */
export function unmount(mount: string): void {
  try {
    execFileSync('umount', ['-l', mount], { stdio: 'pipe' });
    rmSync(mount, { recursive: true, force: true });
  } catch {
    // already gone
  }
}

/** Writes zeros until the file system is full; returns the bytes written. */
export function fill(file: string): number {
  const fd = openSync(file, 'w');
  let filled = 0;
  try {
    for (const size of [1 << 20, 1 << 12, 512, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          filled += writeSync(fd, chunk);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return filled;
}
