/**
 * atEndOfTurn: tasks run after the turn that scheduled them, in order, in
 * one pass; a task scheduled by a running task joins that pass (before an
 * immediate queued meanwhile), and a task that throws loses none of the rest.
 */
import { describe, expect, it } from 'vitest';

import { atEndOfTurn } from '../dist/end-of-turn.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('atEndOfTurn', () => {
  it('runs tasks after the current turn, in the order scheduled', async () => {
    const ran: string[] = [];
    atEndOfTurn(() => ran.push('a'));
    atEndOfTurn(() => ran.push('b'));
    ran.push('now');
    await nextTurn();
    expect(ran).toEqual(['now', 'a', 'b']);
  });

  it('runs a task scheduled by a running task in the same pass, before a later immediate', async () => {
    const ran: string[] = [];
    atEndOfTurn(() => {
      ran.push('batch');
      setImmediate(() => ran.push('immediate'));
      atEndOfTurn(() => ran.push('dispatch'));
    });
    atEndOfTurn(() => ran.push('second batch'));
    await nextTurn();
    await nextTurn();
    expect(ran).toEqual(['batch', 'second batch', 'dispatch', 'immediate']);
  });

  it('still runs the tasks after one that throws, and the error surfaces', async () => {
    const ran: string[] = [];
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onError);
    try {
      atEndOfTurn(() => {
        throw new Error('task failed');
      });
      atEndOfTurn(() => ran.push('after'));
      await nextTurn();
      await nextTurn();
    } finally {
      process.off('uncaughtException', onError);
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
    expect(ran).toEqual(['after']);
    expect(errors).toEqual([new Error('task failed')]);
  });
});
