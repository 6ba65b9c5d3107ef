#!/usr/bin/env node
// Runs the test suite against the native addon built with AddressSanitizer
// and UndefinedBehaviorSanitizer, then builds the normal addon again. The
// addon reads what clients send (JSON numbers, BYTES tensors) and the pool's
// wire format: an overread or undefined behaviour there fails here, where a
// normal build may pass by luck. Takes a few minutes; not part of CI.
// Usage: npm run check:sanitizers [-- vitest arguments, e.g. a test file]
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SANITIZERS = 'address,undefined';

function buildAddon(sanitize) {
  execFileSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', cwd: root, env: { ...process.env, WEIR_SANITIZE: sanitize } });
}

/** Where g++ keeps a sanitizer's runtime: node itself is not built with it, so it is preloaded. */
const runtime = (library) => execFileSync('g++', [`-print-file-name=${library}`], { encoding: 'utf8' }).trim();

let status = 1;
try {
  buildAddon(SANITIZERS);
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  // The leak check measures resident memory, which ASan's quarantine makes meaningless.
  const args = [vitest, 'run', '--exclude', 'test/native-leaks.test.ts', ...process.argv.slice(2)];
  const result = spawnSync(process.execPath, args, {
    stdio: 'inherit',
    cwd: root,
    env: {
      ...process.env,
      WEIR_SANITIZE: SANITIZERS, // tests that cannot run under ASan skip themselves
      LD_PRELOAD: `${runtime('libasan.so')}:${runtime('libubsan.so')}`,
      // V8 and Node keep memory until exit by design: leak reports would be theirs, not the addon's.
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  });
  status = result.status ?? 1;
} finally {
  buildAddon('OFF');
}
process.exit(status);
