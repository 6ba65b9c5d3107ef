/**
 * The worker-thread side of the pool: runs one batch through the native
 * addon, synchronously (this thread has nothing else to do meanwhile), and
 * hands the output buffers back by transfer.
 */
import { Piscina } from 'piscina';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import type { RunReply, RunTask } from './task.js';

const addon = nativeAddon();

export default function runBatch(task: RunTask): RunReply | object {
  let reply: RunReply;
  try {
    reply = { ok: true, ...addon.run(task.sessionKey, task.inputs, task.outputs) };
  } catch (error) {
    const { code, message } = toWeirError(error);
    return { ok: false, code, message } satisfies RunReply;
  }
  return Piscina.move(({
    [Piscina.transferableSymbol]: reply.outputs.map((tensor) => tensor.data.buffer),
    [Piscina.valueSymbol]: reply,
  }) as unknown as Parameters<typeof Piscina.move>[0]);
}
