/** Raw onnxruntime-node's best rows/s on the CNN, measured in a child pinned to the server's core. */
import { join } from 'node:path';

import { runJsonChild } from './children.js';

export interface RawOrtResult {
  per_batch: { batch: number; rows_per_s: number; run_us: number }[];
  best: { batch: number; rows_per_s: number };
}

export async function measureRawOrt(secondsPerBatch: number, cpus: string | undefined): Promise<RawOrtResult> {
  return runJsonChild<RawOrtResult>(join(import.meta.dirname, 'raw-ort-child.ts'), {
    cpus,
    args: [String(secondsPerBatch)],
    timeoutMs: (secondsPerBatch * 4 + 60) * 1000,
    what: 'raw onnxruntime-node run',
  });
}
