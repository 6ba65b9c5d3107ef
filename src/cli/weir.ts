#!/usr/bin/env node
/**
 * `weir` — the command line. `weir serve` loads a model repository into the
 * inference core and keeps it serving until SIGTERM or SIGINT, when it
 * finishes the requests in flight and exits 0.
 */
import { parseArgs } from 'node:util';

import { InferenceCore, type VersionStatus } from '../core/core.js';
import { toWeirError } from '../errors.js';

const USAGE = `Usage: weir serve --model-repository DIR [--workers N] [--intra-op-threads N]

Options (each also settable by the environment variable in brackets):
  --model-repository DIR   model repository in Triton's layout [WEIR_MODEL_REPOSITORY]
  --workers N              inference worker threads (default: one per core) [WEIR_WORKERS]
  --intra-op-threads N     ONNX Runtime threads per run (default: cores / workers) [WEIR_INTRA_OP_THREADS]
`;

function positiveInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${value}'`);
  return n;
}

function describe(status: VersionStatus): string {
  const version = status.version === null ? '-' : String(status.version);
  const reason = status.reason ? `  ${status.reason}` : '';
  return `  ${status.model.padEnd(20)} ${version.padStart(7)}  ${status.state.padEnd(11)}${reason}`.trimEnd();
}

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      'model-repository': { type: 'string' },
      workers: { type: 'string' },
      'intra-op-threads': { type: 'string' },
    },
    strict: true,
  });
  const env = process.env;
  const modelRepository = values['model-repository'] ?? env.WEIR_MODEL_REPOSITORY;
  if (!modelRepository) throw new Error('--model-repository (or WEIR_MODEL_REPOSITORY) is required');
  const core = await InferenceCore.start({
    modelRepository,
    workers: positiveInteger('--workers', values.workers ?? env.WEIR_WORKERS),
    intraOpThreads: positiveInteger('--intra-op-threads', values['intra-op-threads'] ?? env.WEIR_INTRA_OP_THREADS),
  });

  const { threads } = core;
  console.log(`weir ${core.serverMetadata().version}: ONNX Runtime ${core.serverMetadata().onnxruntime}, ` +
    `${threads.workers} workers x ${threads.intraOpThreads} intra-op threads on ${threads.cores} cores`);
  console.log(`models in ${core.repository.root}:`);
  console.log(`  ${'MODEL'.padEnd(20)} ${'VERSION'.padStart(7)}  STATE`);
  for (const status of core.status()) console.log(describe(status));

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  console.log('weir: stopping; finishing requests in flight');
  await core.stop();
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  throw new Error(`unknown command '${command}'; try 'weir serve'`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error && !('code' in error) ? error.message : toWeirError(error).message;
  console.error(`weir: ${message}`);
  process.exitCode = 1;
});
