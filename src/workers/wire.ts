/**
 * How batches and their results cross between the main thread and a worker.
 *
 * Structured-cloning an object graph per batch, and transferring one
 * ArrayBuffer per tensor, each cost more than a small model's whole run. So a
 * group of batches travels as one message: a table of the strings it uses,
 * one Float64Array header of numbers, and one packed buffer holding the bytes
 * of every small tensor. Large tensors travel on their own, by transfer (or
 * shared, when they live in a SharedArrayBuffer), as copying them would cost
 * more than moving them.
 *
 * A group without large tensors can also be laid out flat, in one buffer (a
 * worker's shared mailbox, mailbox.ts), so that nothing is cloned at all:
 *
 *   uint32 stringCount, headerCount, packedBytes, stringBytes (little-endian)
 *   the strings: each a uint32 byte length, then its UTF-8
 *   (to an 8-byte boundary) the header: headerCount float64
 *   (to an 8-byte boundary) the packed tensors: packedBytes
 *
 * native/src/batch_group.cc reads and writes the same layout.
 */
import type { ErrorCode } from '../errors.js';
import { DATATYPES, type DataType, type TypedArray, buffersOf, joinParts } from '../tensors/datatypes.js';
import type { Tensor } from '../tensors/tensor.js';
import type { BatchInput, RunReply, RunTask } from './task.js';

/** Tensors up to this many bytes are copied into the packed buffer. */
export const PACKED_TENSOR_LIMIT = 64 * 1024;

const FLAT_PREAMBLE_BYTES = 16;
/**
 * Parts in shared memory up to this size are copied in like any other
 * (copying them costs less than sharing them), so that a group without
 * large parts can lie flat in a mailbox. (Shared parts are bodies of 4 KiB
 * and more, read-body.ts; or callers' own.)
 */
const SHARED_COPY_LIMIT = 4 * 1024;
const alignTo8 = (offset: number) => Math.ceil(offset / 8) * 8;

export interface WireMessage {
  strings: string[];
  header: Float64Array;
  packed: ArrayBuffer;
  /** Tensors too large to pack, moved or shared as they are. */
  large: TypedArray[];
}

const PACKED = 0;
const LARGE = 1;

/** A group or its replies, written once: then laid flat into a mailbox, or finished as a message. */
export class WireWriter {
  private readonly strings: string[] = [];
  private readonly stringIndex = new Map<string, number>();
  private readonly header: number[] = [];
  private readonly packedTensors: Array<{ data: TypedArray; offset: number }> = [];
  private readonly large: TypedArray[] = [];
  private packedLength = 0;

  number(value: number): void {
    this.header.push(value);
  }

  string(value: string): void {
    let index = this.stringIndex.get(value);
    if (index === undefined) {
      index = this.strings.length;
      this.strings.push(value);
      this.stringIndex.set(value, index);
    }
    this.header.push(index);
  }

  /**
   * A tensor, from one buffer or in parts. A part in shared memory is shared;
   * a lone part larger than PACKED_TENSOR_LIMIT moves; every other part is
   * copied into the packed buffer, the parts of one tensor back to back, so
   * that they arrive joined.
   */
  tensor(tensor: BatchInput): void {
    const { data } = tensor;
    this.string(tensor.name);
    this.string(tensor.datatype);
    this.header.push(tensor.shape.length, ...tensor.shape);
    if (ArrayBuffer.isView(data)) {
      this.header.push(1);
      this.part(data, data.byteLength <= PACKED_TENSOR_LIMIT, true);
      return;
    }
    this.header.push(data.length);
    let follows = false;
    for (const part of data) follows = this.part(part, true, !follows);
  }

  /** Writes one part; true when it went into the packed buffer. */
  private part(data: TypedArray, copy: boolean, align: boolean): boolean {
    const shared = data.buffer instanceof SharedArrayBuffer && data.byteLength > SHARED_COPY_LIMIT;
    if (shared || !copy) {
      this.header.push(LARGE, this.large.length, data.byteLength);
      this.large.push(data);
      return false;
    }
    // A tensor's first part is 8-byte aligned (every TypedArray view stays aligned); the next ones follow it.
    const offset = align ? Math.ceil(this.packedLength / 8) * 8 : this.packedLength;
    this.packedTensors.push({ data, offset });
    this.packedLength = offset + data.byteLength;
    this.header.push(PACKED, offset, data.byteLength);
    return true;
  }

  /**
   * Writes the message into `target` (8-byte aligned) in the flat layout;
   * false, with nothing usable written, when it does not fit or holds a
   * tensor that crosses on its own. The writer is left as it was: `finish`
   * still makes the message.
   */
  finishInto(target: Uint8Array): boolean {
    if (this.large.length > 0 || target.byteOffset % 8 !== 0) return false;
    let stringBytes = 0;
    for (const text of this.strings) stringBytes += 4 + Buffer.byteLength(text, 'utf8');
    const headerOffset = alignTo8(FLAT_PREAMBLE_BYTES + stringBytes);
    const packedOffset = alignTo8(headerOffset + 8 * this.header.length);
    if (packedOffset + this.packedLength > target.byteLength) return false;
    const bytes = Buffer.from(target.buffer, target.byteOffset, target.byteLength);
    bytes.writeUInt32LE(this.strings.length, 0);
    bytes.writeUInt32LE(this.header.length, 4);
    bytes.writeUInt32LE(this.packedLength, 8);
    bytes.writeUInt32LE(stringBytes, 12);
    let at = FLAT_PREAMBLE_BYTES;
    for (const text of this.strings) {
      const length = bytes.write(text, at + 4, 'utf8');
      bytes.writeUInt32LE(length, at);
      at += 4 + length;
    }
    new Float64Array(target.buffer, target.byteOffset + headerOffset, this.header.length).set(this.header);
    for (const { data, offset } of this.packedTensors) {
      target.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), packedOffset + offset);
    }
    return true;
  }

  /** The message and what to transfer with it. */
  finish(): { message: WireMessage; transferList: ArrayBuffer[] } {
    const packed = new ArrayBuffer(this.packedLength);
    const bytes = new Uint8Array(packed);
    for (const { data, offset } of this.packedTensors) {
      bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    }
    for (const [i, data] of this.large.entries()) {
      if (data.buffer instanceof SharedArrayBuffer) continue;
      // A view over part of a buffer is copied out, not to move (or clone) the rest of it.
      if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) this.large[i] = data.slice();
    }
    const message = { strings: this.strings, header: Float64Array.from(this.header), packed, large: this.large };
    return { message, transferList: transfersOf(message) };
  }
}

class WireReader {
  private position = 0;

  constructor(private readonly message: WireMessage) {}

  number(): number {
    return this.message.header[this.position++] as number;
  }

  string(): string {
    return this.message.strings[this.number()] as string;
  }

  tensor(): Tensor {
    const name = this.string();
    const datatype = this.string() as DataType;
    const rank = this.number();
    const shape: number[] = [];
    for (let i = 0; i < rank; i++) shape.push(this.number());
    const count = this.number();
    if (count === 1) return { name, datatype, shape, data: this.part(datatype) };
    const parts: TypedArray[] = [];
    for (let i = 0; i < count; i++) parts.push(this.part(datatype));
    return { name, datatype, shape, data: joinParts(datatype, parts) };
  }

  private part(datatype: DataType): TypedArray {
    const location = this.number();
    const where = this.number();
    const byteLength = this.number();
    const array = DATATYPES[datatype].array;
    return location === PACKED
      ? new array(this.message.packed, where, byteLength / array.BYTES_PER_ELEMENT)
      : (this.message.large[where] as TypedArray);
  }
}

/**
 * The buffers to move with a message: its large tensors' (shared memory is
 * shared instead), each once, as one buffer may back several tensors; and
 * the packed buffer only when large, since moving a buffer costs more than
 * copying a small one.
 */
export function transfersOf(message: WireMessage): ArrayBuffer[] {
  const transfers = buffersOf(message.large);
  if (message.packed.byteLength > PACKED_TENSOR_LIMIT) transfers.push(message.packed);
  return transfers;
}

/** Writes a group of tasks, to lay flat (`finishInto`) or, failing that, to send as a message (`finish`). */
export function writeTasks(tasks: readonly RunTask[]): WireWriter {
  const writer = new WireWriter();
  writer.number(tasks.length);
  for (const task of tasks) {
    writer.string(task.sessionKey);
    writer.number(task.inputs.length);
    for (const input of task.inputs) writer.tensor(input);
    writer.number(task.outputs ? task.outputs.length : -1);
    for (const output of task.outputs ?? []) writer.string(output);
  }
  return writer;
}

export function encodeTasks(tasks: readonly RunTask[]): { message: WireMessage; transferList: ArrayBuffer[] } {
  return writeTasks(tasks).finish();
}

/** Writes `tasks` into `target` in the flat layout; false when they do not fit it or hold a tensor that must cross on its own. */
export function encodeTasksInto(tasks: readonly RunTask[], target: Uint8Array): boolean {
  return writeTasks(tasks).finishInto(target);
}

/**
 * A message in the flat layout, copied out of `source` (shared memory the
 * next group reuses) into a message of its own.
 */
export function readFlatMessage(source: Uint8Array): WireMessage {
  const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const stringCount = bytes.readUInt32LE(0);
  const headerCount = bytes.readUInt32LE(4);
  const packedBytes = bytes.readUInt32LE(8);
  const stringBytes = bytes.readUInt32LE(12);
  const strings: string[] = [];
  let at = FLAT_PREAMBLE_BYTES;
  for (let i = 0; i < stringCount; i++) {
    const length = bytes.readUInt32LE(at);
    strings.push(bytes.toString('utf8', at + 4, at + 4 + length));
    at += 4 + length;
  }
  const headerOffset = alignTo8(FLAT_PREAMBLE_BYTES + stringBytes);
  const packedOffset = alignTo8(headerOffset + 8 * headerCount);
  const header = new Float64Array(headerCount);
  header.set(new Float64Array(source.buffer, source.byteOffset + headerOffset, headerCount));
  const packed = new ArrayBuffer(packedBytes);
  new Uint8Array(packed).set(new Uint8Array(source.buffer, source.byteOffset + packedOffset, packedBytes));
  return { strings, header, packed, large: [] };
}

/** A task as a worker reads it: every input joined into one array. */
export type DecodedTask = Omit<RunTask, 'inputs'> & { inputs: Tensor[] };

export function decodeTasks(message: WireMessage): DecodedTask[] {
  const reader = new WireReader(message);
  const tasks: DecodedTask[] = [];
  for (let count = reader.number(); count > 0; count--) {
    const sessionKey = reader.string();
    const inputs: Tensor[] = [];
    for (let n = reader.number(); n > 0; n--) inputs.push(reader.tensor());
    const outputCount = reader.number();
    const task: DecodedTask = { sessionKey, inputs };
    if (outputCount >= 0) {
      task.outputs = [];
      for (let n = outputCount; n > 0; n--) task.outputs.push(reader.string());
    }
    tasks.push(task);
  }
  return tasks;
}

export function encodeReplies(replies: readonly RunReply[]): { message: WireMessage; transferList: ArrayBuffer[] } {
  const writer = new WireWriter();
  writer.number(replies.length);
  for (const reply of replies) {
    writer.number(reply.ok ? 1 : 0);
    if (reply.ok) {
      writer.number(reply.runNs);
      writer.number(reply.outputs.length);
      for (const output of reply.outputs) writer.tensor(output);
    } else {
      writer.string(reply.code);
      writer.string(reply.message);
    }
  }
  return writer.finish();
}

export function decodeReplies(message: WireMessage): RunReply[] {
  const reader = new WireReader(message);
  const replies: RunReply[] = [];
  for (let count = reader.number(); count > 0; count--) {
    if (reader.number() === 1) {
      const runNs = reader.number();
      const outputs: Tensor[] = [];
      for (let n = reader.number(); n > 0; n--) outputs.push(reader.tensor());
      replies.push({ ok: true, outputs, runNs });
    } else {
      replies.push({ ok: false, code: reader.string() as ErrorCode, message: reader.string() });
    }
  }
  return replies;
}
