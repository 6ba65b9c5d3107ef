/**
 * The worker-thread side of the pool: runs the batches of one task through
 * the native addon, one after another and synchronously (this thread has
 * nothing else to do meanwhile), and hands the output buffers back by
 * transfer. One batch failing does not fail the others.
 */
import { Piscina } from 'piscina';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import type { RunReply, RunTask } from './task.js';

const addon = nativeAddon();

function runOne(task: RunTask): RunReply {
  try {
    return { ok: true, ...addon.run(task.sessionKey, task.inputs, task.outputs) };
  } catch (error) {
    const { code, message } = toWeirError(error);
    return { ok: false, code, message };
  }
}

export default function runBatches(tasks: RunTask[]): unknown {
  const replies = tasks.map(runOne);
  const buffers = replies.flatMap((reply) => (reply.ok ? reply.outputs.map((tensor) => tensor.data.buffer) : []));
  const transferable = { [Piscina.transferableSymbol]: buffers, [Piscina.valueSymbol]: replies };
  return Piscina.move(transferable as unknown as Parameters<typeof Piscina.move>[0]);
}
