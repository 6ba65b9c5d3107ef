/**
 * The native addon's leak check (scripts/leak-check.mjs) as a test: 120 000
 * runs, loads and releases, and the resident memory must level off.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { expect, it } from 'vitest';

it('loads, runs and releases sessions without leaking memory or sessions', async () => {
  const script = join(__dirname, '..', 'scripts', 'leak-check.mjs');
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', script], { timeout: 60_000 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1) as string) as { growth_mb: number; live_sessions: number };
  expect(result.live_sessions).toBe(0);
  expect(result.growth_mb).toBeLessThan(8);
});
