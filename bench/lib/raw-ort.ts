/** Raw onnxruntime-node's best rows/s on the CNN, measured in a child pinned to the server's core. */
import { join } from 'node:path';

import { startChild, waitForChild } from './children.js';

export interface RawOrtResult {
  per_batch: { batch: number; rows_per_s: number; run_us: number }[];
  best: { batch: number; rows_per_s: number };
}

export async function measureRawOrt(secondsPerBatch: number, cpus: string | undefined): Promise<RawOrtResult> {
  const child = startChild([process.execPath, '--import', 'tsx', join(import.meta.dirname, 'raw-ort-child.ts'), String(secondsPerBatch)], {
    cpus,
    collectStdout: true,
  });
  const code = await waitForChild(child, (secondsPerBatch * 4 + 60) * 1000);
  const line = child.stdout().trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{')) throw new Error(`raw onnxruntime-node run failed (${code}): ${child.tail().slice(-800)}`);
  return JSON.parse(line) as RawOrtResult;
}
