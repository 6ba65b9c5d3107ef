/**
 * ModelInferRequest, ModelInferResponse and ModelStreamInferResponse on the
 * protobuf wire, by hand. proto-loader's serializers build each message
 * twice (protobufjs's message object, then the plain object with the
 * loader's options, or the reverse), ~9 µs of a ~55 µs call. These read
 * and write the same plain shapes (messages.ts, proto.ts's options: int64
 * as decimal strings, bytes as Buffers viewing the message, every field
 * present), so the codec cannot tell them apart: a test holds them equal to
 * proto-loader's. A request with typed `contents` is left to protobufjs,
 * whose arrays of numbers are its strength: decodeModelInferRequest
 * returns null for it.
 */
import type { InferParameter, InferInputTensor, ModelInferRequest, ModelInferResponse, ModelStreamInferResponse, Parameters } from './messages.js';

const VARINT = 0;
const FIXED64 = 1;
export const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** InferInputTensor's `contents` field: its presence sends the request to protobufjs. */
const CONTENTS_FIELD = 5;

/** Reads protobuf fields; a nested message is read by narrowing `end` to it (enter) and widening it back (leave). */
export class Reader {
  position = 0;

  constructor(
    readonly bytes: Buffer,
    public end: number,
  ) {}

  /** The next field's tag (field number << 3 | wire type), or -1 at the end. */
  nextTag(): number {
    return this.position < this.end ? this.uint32() : -1;
  }

  /** Starts reading the length-delimited field here as a message; returns what leave() restores. */
  enter(): number {
    const outer = this.end;
    const length = this.uint32();
    this.need(length);
    this.end = this.position + length;
    return outer;
  }

  leave(outer: number): void {
    this.position = this.end;
    this.end = outer;
  }

  /** A varint of up to 32 bits (tags, lengths, bools). */
  uint32(): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte();
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value >>> 0;
    }
    // Longer varints (negative int32 written as 64 bits) keep their low 32 bits.
    for (let i = 0; i < 5; i++) if (this.byte() < 0x80) return value >>> 0;
    throw new Error('a varint longer than 10 bytes');
  }

  /** A 64-bit varint as a decimal string, signed (int64) or not (uint64), as proto-loader's `longs: String` gives. */
  int64(signed: boolean): string {
    let low = 0;
    let high = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const byte = this.byte();
      const bits = byte & 0x7f;
      if (shift < 28) low |= bits << shift;
      else if (shift === 28) {
        low |= (bits & 0x0f) << 28;
        high |= bits >>> 4;
      } else high |= bits << (shift - 32);
      if (byte < 0x80) {
        low >>>= 0;
        high >>>= 0;
        if (high === 0) return String(low);
        if (high < 0x200000) return String(high * 2 ** 32 + low); // under 2^53: exact as a number
        const value = (BigInt(high) << 32n) | BigInt(low);
        return (signed ? BigInt.asIntN(64, value) : value).toString();
      }
    }
    throw new Error('a varint longer than 10 bytes');
  }

  double(): number {
    this.need(8);
    const value = this.bytes.readDoubleLE(this.position);
    this.position += 8;
    return value;
  }

  /** A length-delimited field's content, as a view. */
  view(): Buffer {
    const length = this.uint32();
    this.need(length);
    this.position += length;
    return this.bytes.subarray(this.position - length, this.position);
  }

  string(): string {
    const length = this.uint32();
    this.need(length);
    this.position += length;
    return this.bytes.toString('utf8', this.position - length, this.position);
  }

  skip(wireType: number): void {
    if (wireType === VARINT) this.uint32();
    else if (wireType === FIXED64) this.advance(8);
    else if (wireType === LENGTH_DELIMITED) this.advance(this.uint32());
    else if (wireType === FIXED32) this.advance(4);
    else throw new Error(`wire type ${wireType} at byte ${this.position} is not one this message uses`);
  }

  private byte(): number {
    if (this.position >= this.end) throw new Error('the message ends inside a field');
    return this.bytes[this.position++] as number;
  }

  private advance(count: number): void {
    this.need(count);
    this.position += count;
  }

  private need(count: number): void {
    if (this.position + count > this.end) throw new Error('the message ends inside a field');
  }
}

// Tags: field number << 3 | wire type.
const tag = (field: number, wireType: number) => (field << 3) | wireType;
const NAME = tag(1, LENGTH_DELIMITED);
const SECOND_STRING = tag(2, LENGTH_DELIMITED);
const SHAPE_PACKED = tag(3, LENGTH_DELIMITED);
const SHAPE_UNPACKED = tag(3, VARINT);
const INPUT_PARAMETER = tag(4, LENGTH_DELIMITED);
const CONTENTS = tag(CONTENTS_FIELD, LENGTH_DELIMITED);
const OUTPUT_PARAMETER = tag(2, LENGTH_DELIMITED);
const REQUEST_FIELDS = { model_name: tag(1, LENGTH_DELIMITED), model_version: tag(2, LENGTH_DELIMITED), id: tag(3, LENGTH_DELIMITED), parameter: tag(4, LENGTH_DELIMITED), input: tag(5, LENGTH_DELIMITED), output: tag(6, LENGTH_DELIMITED), raw: tag(7, LENGTH_DELIMITED) };

/** One map<string, InferParameter> entry (the reader at its length), added to `into`. */
function readParameterEntry(reader: Reader, into: Parameters): void {
  const outer = reader.enter();
  let key = '';
  let value: InferParameter = {};
  for (let t = reader.nextTag(); t >= 0; t = reader.nextTag()) {
    if (t === NAME) key = reader.string();
    else if (t === SECOND_STRING) value = readParameter(reader);
    else reader.skip(t & 7);
  }
  reader.leave(outer);
  into[key] = value;
}

function readParameter(reader: Reader): InferParameter {
  const outer = reader.enter();
  const parameter: InferParameter = {};
  // A member given twice: the last is the choice (an earlier one stays set, as protobufjs leaves it).
  const choose = (choice: NonNullable<InferParameter['parameter_choice']>, value: boolean | string | number) =>
    Object.assign(parameter, { [choice]: value, parameter_choice: choice });
  for (let t = reader.nextTag(); t >= 0; t = reader.nextTag()) {
    if (t === tag(1, VARINT)) choose('bool_param', reader.uint32() !== 0);
    else if (t === tag(2, VARINT)) choose('int64_param', reader.int64(true));
    else if (t === tag(3, LENGTH_DELIMITED)) choose('string_param', reader.string());
    else if (t === tag(4, FIXED64)) choose('double_param', reader.double());
    else if (t === tag(5, VARINT)) choose('uint64_param', reader.int64(false));
    else reader.skip(t & 7);
  }
  reader.leave(outer);
  return parameter;
}

/** An InferInputTensor; null when it has typed contents. */
function readInput(reader: Reader): InferInputTensor | null {
  const outer = reader.enter();
  const input: InferInputTensor = { name: '', datatype: '', shape: [], parameters: {}, contents: null };
  let typed = false;
  for (let t = reader.nextTag(); t >= 0; t = reader.nextTag()) {
    if (t === NAME) input.name = reader.string();
    else if (t === SECOND_STRING) input.datatype = reader.string();
    else if (t === SHAPE_PACKED) {
      // Packed, as proto3 writes it.
      const shapeOuter = reader.enter();
      while (reader.position < reader.end) input.shape.push(reader.int64(true));
      reader.leave(shapeOuter);
    } else if (t === SHAPE_UNPACKED) input.shape.push(reader.int64(true));
    else if (t === INPUT_PARAMETER) readParameterEntry(reader, input.parameters);
    else if (t === CONTENTS) {
      typed = true;
      reader.skip(LENGTH_DELIMITED);
    } else reader.skip(t & 7);
  }
  reader.leave(outer);
  return typed ? null : input;
}

function readOutput(reader: Reader): { name: string; parameters: Parameters } {
  const outer = reader.enter();
  const output = { name: '', parameters: {} as Parameters };
  for (let t = reader.nextTag(); t >= 0; t = reader.nextTag()) {
    if (t === NAME) output.name = reader.string();
    else if (t === OUTPUT_PARAMETER) readParameterEntry(reader, output.parameters);
    else reader.skip(t & 7);
  }
  reader.leave(outer);
  return output;
}

/**
 * A ModelInferRequest as proto-loader would give it, its raw contents views
 * of `bytes`; null when an input has typed contents (decode it with
 * protobufjs). Throws on malformed protobuf.
 */
export function decodeModelInferRequest(bytes: Buffer): ModelInferRequest | null {
  const reader = new Reader(bytes, bytes.length);
  const message: ModelInferRequest = { model_name: '', model_version: '', id: '', parameters: {}, inputs: [], outputs: [], raw_input_contents: [] };
  let typed = false;
  for (let t = reader.nextTag(); t >= 0; t = reader.nextTag()) {
    if (t === REQUEST_FIELDS.model_name) message.model_name = reader.string();
    else if (t === REQUEST_FIELDS.model_version) message.model_version = reader.string();
    else if (t === REQUEST_FIELDS.id) message.id = reader.string();
    else if (t === REQUEST_FIELDS.parameter) readParameterEntry(reader, message.parameters);
    else if (t === REQUEST_FIELDS.input) {
      const input = readInput(reader);
      if (input) message.inputs.push(input);
      else typed = true;
    } else if (t === REQUEST_FIELDS.output) message.outputs.push(readOutput(reader));
    else if (t === REQUEST_FIELDS.raw) message.raw_input_contents.push(reader.view());
    else reader.skip(t & 7);
  }
  return typed ? null : message;
}

/** A growing buffer that protobuf fields are written into. */
class Writer {
  bytes: Buffer;
  position = 0;

  constructor(capacity: number) {
    this.bytes = Buffer.allocUnsafe(capacity);
  }

  /** What was written: a view of the buffer. */
  result(): Buffer {
    return this.bytes.subarray(0, this.position);
  }

  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** A non-negative integer up to 2^53 as a varint. */
  varint(value: number): void {
    this.ensure(10);
    while (value >= 0x80) {
      this.bytes[this.position++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.bytes[this.position++] = value;
  }

  /** An int64 or uint64 (a number, or a decimal string as decoded) as a varint; negative ones take 10 bytes. */
  int64(value: string | number): void {
    const number = Number(value);
    if (Number.isSafeInteger(number) && number >= 0) return this.varint(number);
    let big = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (big >= 0x80n) {
      this.bytes[this.position++] = Number(big & 0x7fn) | 0x80;
      big >>= 7n;
    }
    this.bytes[this.position++] = Number(big);
  }

  /** A string field; an empty one is not written (proto3's default) unless `keepEmpty` (a oneof's chosen member). */
  string(field: number, value: string | undefined, keepEmpty = false): void {
    if (!value && !keepEmpty) return;
    value ??= '';
    this.tag(field, LENGTH_DELIMITED);
    // Short ASCII (names, versions, ids) is copied char by char: Buffer's UTF-8 calls cost more than the copy.
    if (value.length < 128 && this.writeAscii(value)) return;
    const length = Buffer.byteLength(value, 'utf8');
    this.varint(length);
    this.ensure(length);
    this.position += this.bytes.write(value, this.position, length, 'utf8');
  }

  /** Writes `value`'s length (one byte) and its characters, if all are ASCII; else writes nothing and returns false. */
  private writeAscii(value: string): boolean {
    this.ensure(1 + value.length);
    const { bytes } = this;
    const start = this.position + 1;
    for (let i = 0; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) return false;
      bytes[start + i] = code;
    }
    bytes[this.position] = value.length;
    this.position = start + value.length;
    return true;
  }

  /** A bytes field, written even when empty (an entry of a repeated field keeps its place). */
  data(field: number, value: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(value.byteLength);
    this.ensure(value.byteLength);
    this.bytes.set(value, this.position);
    this.position += value.byteLength;
  }

  double(field: number, value: number): void {
    this.tag(field, FIXED64);
    this.ensure(8);
    this.position = this.bytes.writeDoubleLE(value, this.position);
  }

  /** Starts a length-delimited field whose length is known only at its end: room for a 5-byte length. */
  begin(field: number): number {
    this.tag(field, LENGTH_DELIMITED);
    this.ensure(5);
    this.position += 5;
    return this.position;
  }

  /** Ends what begin() started: writes its length and moves its content up to it. */
  end(contentStart: number): void {
    const length = this.position - contentStart;
    // Into the 5 bytes begin() reserved (any length under 2^35 fits): nothing may grow the buffer here.
    let at = contentStart - 5;
    for (let rest = length; ; rest = Math.floor(rest / 0x80)) {
      if (rest < 0x80) {
        this.bytes[at++] = rest;
        break;
      }
      this.bytes[at++] = (rest % 0x80) | 0x80;
    }
    if (at !== contentStart) this.bytes.copyWithin(at, contentStart, contentStart + length);
    this.position = at + length;
  }

  private ensure(count: number): void {
    if (this.position + count <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.position + count));
    this.bytes.copy(grown, 0, 0, this.position);
    this.bytes = grown;
  }
}

const PARAMETER_MEMBERS = ['bool_param', 'int64_param', 'string_param', 'double_param', 'uint64_param'] as const;

function writeParameters(writer: Writer, field: number, parameters: Parameters | undefined): void {
  if (!parameters) return;
  for (const key in parameters) {
    const parameter = parameters[key] as InferParameter;
    const entry = writer.begin(field);
    writer.string(1, key);
    const value = writer.begin(2);
    const choice = parameter.parameter_choice ?? PARAMETER_MEMBERS.find((member) => parameter[member] !== undefined);
    if (choice === 'bool_param') {
      writer.tag(1, VARINT);
      writer.varint(parameter.bool_param ? 1 : 0);
    } else if (choice === 'int64_param' || choice === 'uint64_param') {
      writer.tag(choice === 'int64_param' ? 2 : 5, VARINT);
      writer.int64(parameter[choice] as string | number);
    } else if (choice === 'string_param') {
      writer.string(3, parameter.string_param, true);
    } else if (choice === 'double_param') writer.double(4, parameter.double_param as number);
    writer.end(value);
    writer.end(entry);
  }
}

/** Room for the tensors and a few hundred bytes of names and shapes. */
function capacityFor(response: Partial<ModelInferResponse>): number {
  let bytes = 256;
  for (const raw of response.raw_output_contents ?? []) bytes += raw.byteLength + 6;
  return bytes;
}

function writeInferResponse(writer: Writer, response: Partial<ModelInferResponse>): void {
  writer.string(1, response.model_name);
  writer.string(2, response.model_version);
  writer.string(3, response.id);
  writeParameters(writer, 4, response.parameters);
  for (const output of response.outputs ?? []) {
    const tensor = writer.begin(5);
    writer.string(1, output.name);
    writer.string(2, output.datatype);
    if (output.shape.length > 0) {
      const shape = writer.begin(3);
      for (const dimension of output.shape) writer.int64(dimension);
      writer.end(shape);
    }
    writer.end(tensor);
  }
  for (const raw of response.raw_output_contents ?? []) writer.data(6, raw);
}

/** A ModelInferResponse (outputs as raw contents: the server never answers with typed ones). */
export function encodeModelInferResponse(response: Partial<ModelInferResponse>): Buffer {
  const writer = new Writer(capacityFor(response));
  writeInferResponse(writer, response);
  return writer.result();
}

export function encodeModelStreamInferResponse(message: ModelStreamInferResponse): Buffer {
  const writer = new Writer(capacityFor(message.infer_response ?? {}) + 16 + Buffer.byteLength(message.error_message, 'utf8'));
  writer.string(1, message.error_message);
  if (message.infer_response) {
    const response = writer.begin(2);
    writeInferResponse(writer, message.infer_response);
    writer.end(response);
  }
  return writer.result();
}
