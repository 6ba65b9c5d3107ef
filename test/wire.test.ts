import { describe, expect, it } from 'vitest';

import { encodeBytesTensor } from '../dist/tensors/datatypes.js';
import type { Tensor } from '../dist/tensors/tensor.js';
import type { BatchInput, RunReply, RunTask } from '../dist/workers/task.js';
import { PACKED_TENSOR_LIMIT, decodeReplies, decodeTasks, encodeReplies, encodeTasks, encodeTasksInto, readFlatMessage } from '../dist/workers/wire.js';

/** What a worker receives: the message after a structured clone with its transfers. */
function crossThread<T>(value: T, transferList: ArrayBuffer[]): T {
  return structuredClone(value, { transfer: transferList });
}

const plain = (tensor: Tensor | BatchInput) => ({ ...tensor, data: Array.from(tensor.data as ArrayLike<number | bigint>) });

describe('the pool wire format', () => {
  it('round-trips batches of every datatype, with and without an output selection', () => {
    const tasks: RunTask[] = [
      {
        sessionKey: 'a:1#1',
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, Number.NaN) },
          { name: 'ids', datatype: 'INT64', shape: [1], data: BigInt64Array.of(-(2n ** 63n)) },
          { name: 'flag', datatype: 'BOOL', shape: [3], data: Uint8Array.of(1, 0, 1) },
          { name: 'half', datatype: 'FP16', shape: [1], data: Uint16Array.of(0x3c00) },
          { name: 's', datatype: 'BYTES', shape: [2], data: encodeBytesTensor(['héllo', '']) },
          { name: 'scalar', datatype: 'FP64', shape: [], data: Float64Array.of(-0) },
        ],
      },
      { sessionKey: 'b:2#7', inputs: [{ name: 'x', datatype: 'INT8', shape: [1], data: Int8Array.of(-5) }], outputs: ['y', 'z'] },
      { sessionKey: 'a:1#1', inputs: [], outputs: [] },
    ];
    const expected = tasks.map((t) => ({ ...t, inputs: t.inputs.map(plain) }));
    const { message, transferList } = encodeTasks(tasks);
    const decoded = decodeTasks(crossThread(message, transferList));
    expect(decoded.map((t) => ({ ...t, inputs: t.inputs.map(plain) }))).toEqual(expected);
    for (const [i, task] of decoded.entries()) {
      for (const [j, input] of task.inputs.entries()) {
        expect(input.data.constructor).toBe(tasks[i]?.inputs[j]?.data.constructor);
        expect(input.data.byteOffset % 8).toBe(0);
      }
    }
  });

  it('copies small tensors into one buffer and leaves the caller its own', () => {
    const data = new Float32Array(8).fill(1.5);
    const { message, transferList } = encodeTasks([{ sessionKey: 'k', inputs: [{ name: 'x', datatype: 'FP32', shape: [8], data }] }]);
    expect(transferList).toHaveLength(0); // a small packed buffer is cheaper to copy than to move
    expect(message.large).toHaveLength(0);
    crossThread(message, transferList);
    expect(data.byteLength).toBe(32);
  });

  it('moves large tensors, copying out a view over part of a buffer first, and shares shared memory', () => {
    const count = PACKED_TENSOR_LIMIT / 4 + 1;
    const whole = new Float32Array(count).fill(2);
    const backing = new Float32Array(count + 16).fill(3);
    const partial = backing.subarray(8, 8 + count);
    const shared = new Float32Array(new SharedArrayBuffer(count * 4)).fill(4);
    const inputs: Tensor[] = [
      { name: 'whole', datatype: 'FP32', shape: [count], data: whole },
      { name: 'partial', datatype: 'FP32', shape: [count], data: partial },
      { name: 'shared', datatype: 'FP32', shape: [count], data: shared },
    ];
    const { message, transferList } = encodeTasks([{ sessionKey: 'k', inputs }]);
    expect(transferList).toHaveLength(2); // whole + the copy of partial
    const [task] = decodeTasks(crossThread(message, transferList));
    expect(whole.byteLength).toBe(0); // moved
    expect(backing.byteLength).toBe((count + 16) * 4); // untouched
    expect(task?.inputs.map((t) => t.data[count - 1])).toEqual([2, 3, 4]);
    (task?.inputs[2]?.data as Float32Array)[0] = 9; // the same memory on both sides
    expect(shared[0]).toBe(9);
  });

  it('joins a batch input given in parts: ordinary parts back to back in the packed buffer, none detached', () => {
    const parts = [Float32Array.of(1, 2), Float32Array.of(3, 4), Float32Array.of(5, 6)];
    const { message, transferList } = encodeTasks([{ sessionKey: 'k', inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 2], data: parts }] }]);
    expect(message.large).toHaveLength(0);
    expect(Array.from(new Float32Array(message.packed, 0, 6))).toEqual([1, 2, 3, 4, 5, 6]); // already joined
    const [task] = decodeTasks(crossThread(message, transferList));
    expect(Array.from(task?.inputs[0]?.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);

    // Parts adding up to more than the limit: the packed buffer moves; the requests keep their own buffers.
    const rows = Array.from({ length: 3 }, (_, i) => new Float64Array(PACKED_TENSOR_LIMIT / 16).fill(i));
    const large = encodeTasks([{ sessionKey: 'k', inputs: [{ name: 'x', datatype: 'FP64', shape: [3, PACKED_TENSOR_LIMIT / 16], data: rows }] }]);
    expect(large.transferList).toEqual([large.message.packed]);
    const [moved] = decodeTasks(crossThread(large.message, large.transferList));
    expect(rows.map((row) => row.byteLength)).toEqual(rows.map(() => PACKED_TENSOR_LIMIT / 2));
    expect((moved?.inputs[0]?.data as Float64Array)[PACKED_TENSOR_LIMIT / 16]).toBe(1);
  });

  it('shares the parts in shared memory past 4 KiB, for the worker to join, and copies smaller ones', () => {
    const row = 1024; // 4 KiB of INT32
    const shared = [1, 2].map((v) => new Int32Array(new SharedArrayBuffer(8 * row)).fill(v)); // two rows each
    const small = new Int32Array(new SharedArrayBuffer(4 * row)).fill(3); // one row: 4 KiB, copied
    const ordinary = new Int32Array(row).fill(7);
    const data = [shared[0] as Int32Array, ordinary, small, shared[1] as Int32Array];
    const { message, transferList } = encodeTasks([{ sessionKey: 'k', inputs: [{ name: 'x', datatype: 'INT32', shape: [6, row], data }] }]);
    expect(message.large).toEqual(shared);
    expect(transferList).toHaveLength(0);
    const [task] = decodeTasks(crossThread(message, transferList));
    const joined = task?.inputs[0]?.data as Int32Array;
    expect([0, 2, 3, 4].map((r) => joined[r * row])).toEqual([1, 7, 3, 2]);
    expect(joined.length).toBe(6 * row);
  });

  it('round-trips replies, results and coded failures alike', () => {
    const replies: RunReply[] = [
      { ok: true, runNs: 3e9, outputs: [{ name: 'y', datatype: 'UINT64', shape: [1, 1], data: BigUint64Array.of(2n ** 64n - 1n) }] },
      { ok: false, code: 'ORT_INVALID_ARGUMENT', message: 'bad input' },
    ];
    const { message, transferList } = encodeReplies(replies);
    const decoded = decodeReplies(crossThread(message, transferList));
    expect(decoded[0]).toMatchObject({ ok: true, runNs: 3e9 });
    expect(decoded[0]?.ok && plain(decoded[0].outputs[0] as Tensor)).toEqual(plain(replies[0]?.ok ? (replies[0].outputs[0] as Tensor) : ({} as Tensor)));
    expect(decoded[1]).toEqual(replies[1]);
  });
});

describe('the flat layout (a worker\'s shared mailbox)', () => {
  const tasks: RunTask[] = [
    {
      sessionKey: 'modèle:1#1',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [2, 3], data: [Float32Array.of(1, 2, 3), Float32Array.of(4, 5, Number.NaN)] },
        { name: 'ids', datatype: 'INT64', shape: [1], data: BigInt64Array.of(-(2n ** 63n)) },
        { name: 's', datatype: 'BYTES', shape: [2], data: encodeBytesTensor(['héllo', '']) },
        // Small parts in shared memory are copied in like the others.
        { name: 'h', datatype: 'UINT8', shape: [3], data: new Uint8Array(new SharedArrayBuffer(3)).fill(7) },
      ],
      outputs: ['y'],
    },
    { sessionKey: 'b:2#7', inputs: [{ name: 'x', datatype: 'INT8', shape: [1], data: Int8Array.of(-5) }] },
  ];
  const mailbox = () => new Uint8Array(new SharedArrayBuffer(64 * 1024));

  it('holds what the message holds: written flat, read back, decoded alike', () => {
    const target = mailbox();
    expect(encodeTasksInto(tasks, target)).toBe(true);
    const flat = decodeTasks(readFlatMessage(target));
    const { message, transferList } = encodeTasks(tasks);
    const viaMessage = decodeTasks(crossThread(message, transferList));
    expect(flat.map((t) => ({ ...t, inputs: t.inputs.map(plain) }))).toEqual(viaMessage.map((t) => ({ ...t, inputs: t.inputs.map(plain) })));
    expect(flat[0]?.inputs[0]?.data.buffer).not.toBeInstanceOf(SharedArrayBuffer); // copied out of the mailbox
  });

  it('declines, rather than writes part of it, a group with a tensor that crosses on its own (large, or shared past 4 KiB), one too large, or an unaligned target', () => {
    const large: RunTask = { sessionKey: 'k', inputs: [{ name: 'x', datatype: 'UINT8', shape: [PACKED_TENSOR_LIMIT + 1], data: new Uint8Array(PACKED_TENSOR_LIMIT + 1) }] };
    const shared: RunTask = { sessionKey: 'k', inputs: [{ name: 'x', datatype: 'UINT8', shape: [8192], data: new Uint8Array(new SharedArrayBuffer(8192)) }] };
    const big: RunTask = { sessionKey: 'k', inputs: [{ name: 'x', datatype: 'UINT8', shape: [60_000], data: new Uint8Array(60_000) }] };
    for (const [group, target] of [
      [[large], mailbox()],
      [[shared], mailbox()],
      [[big, big], mailbox()],
      [tasks, mailbox().subarray(4)],
    ] as const) {
      const untouched = new Uint8Array(target.byteLength);
      expect(encodeTasksInto(group, target)).toBe(false);
      expect(Buffer.from(target.buffer, target.byteOffset, target.byteLength).equals(untouched)).toBe(true);
    }
  });
});
