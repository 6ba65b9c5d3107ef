/**
 * The worker-thread side of the pool: runs the batches of one task through
 * the native addon, one after another and synchronously (this thread has
 * nothing else to do meanwhile). One batch failing does not fail the others.
 */
import { Piscina } from 'piscina';

import { toWeirError } from '../errors.js';
import { nativeAddon } from '../native/addon.js';
import type { RunReply, RunTask } from './task.js';
import { type WireMessage, decodeTasks, encodeReplies } from './wire.js';

const addon = nativeAddon();

function runOne(task: RunTask): RunReply {
  try {
    return { ok: true, ...addon.run(task.sessionKey, task.inputs, task.outputs) };
  } catch (error) {
    const { code, message } = toWeirError(error);
    return { ok: false, code, message };
  }
}

export default function runBatches(tasks: WireMessage): unknown {
  const { message, transferList } = encodeReplies(decodeTasks(tasks).map(runOne));
  const moved = { [Piscina.transferableSymbol]: transferList, [Piscina.valueSymbol]: message };
  return Piscina.move(moved as unknown as Parameters<typeof Piscina.move>[0]);
}
