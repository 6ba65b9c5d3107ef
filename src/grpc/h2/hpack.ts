/**
 * HPACK (RFC 7541): the header compression of HTTP/2.
 *
 * The decoder reads a client's header blocks in full, dynamic table included.
 * The encoder writes the server's responses with the static table only and
 * raw strings: its blocks are few, mostly constant and built ahead of time,
 * and a client's decoder state stays untouched by them.
 *
 * Header strings are octets; they are held as strings of one char per octet.
 */

import { huffmanDecode, latin1String } from './huffman.js';

/** A block breaks HPACK: a COMPRESSION_ERROR, so the connection must close. */
export class HpackError extends Error {
  override name = 'HpackError';
}

/**
 * The decoded header list is larger than the limit. The block was decoded in
 * full, so the dynamic table is still in step: only the stream is refused.
 */
export class HeaderListTooLarge extends Error {
  override name = 'HeaderListTooLarge';
  constructor(
    /** Sum over the fields of name and value octets plus 32 (RFC 7540 6.5.2). */
    readonly listBytes: number,
    readonly limit: number,
  ) {
    super(`header list of ${listBytes} bytes exceeds the limit of ${limit}`);
  }
}

/** RFC 7541 Appendix A; index 0 is not an entry. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''],
  ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''],
  ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''],
  ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''],
  ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''],
  ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_NAMES = STATIC_TABLE.map(([name]) => name);
const STATIC_VALUES = STATIC_TABLE.map(([, value]) => value);
const STATIC_ENTRIES = STATIC_TABLE.length - 1;

/** RFC 7541 section 4.1: what an entry costs in the table. */
const ENTRY_OVERHEAD = 32;

/** Integers above this are an attack or a bug, not a length or an index. */
const MAX_INTEGER = 2 ** 31 - 1;
/** 2^31 fits in five continuation octets of 7 bits. */
const MAX_INTEGER_SHIFT = 28;

/**
 * The dynamic table (RFC 7541 section 2.3.2): a ring of entries, newest at
 * `head`, evicted from the oldest end. Each entry takes at least 32 bytes, so
 * the ring never needs more than maxSize / 32 slots.
 */
class DynamicTable {
  private readonly names: string[];
  private readonly values: string[];
  private readonly mask: number;
  private head = 0;
  /** Entries held, and their size by the count of section 4.1 (read-only outside). */
  count = 0;
  size = 0;

  constructor(private maxSize: number) {
    let slots = 1;
    while (slots < maxSize / ENTRY_OVERHEAD) slots *= 2;
    this.names = new Array<string>(slots).fill('');
    this.values = new Array<string>(slots).fill('');
    this.mask = slots - 1;
  }

  /** `age` 0 is the newest entry. */
  name(age: number): string {
    return this.names[(this.head - age) & this.mask]!;
  }

  value(age: number): string {
    return this.values[(this.head - age) & this.mask]!;
  }

  add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    // Section 4.4: an entry larger than the whole table empties it.
    this.evictDownTo(this.maxSize - entrySize);
    if (entrySize > this.maxSize) return;
    this.head = (this.head + 1) & this.mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.size += entrySize;
  }

  resize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictDownTo(maxSize);
  }

  private evictDownTo(size: number): void {
    while (this.count > 0 && this.size > size) {
      const oldest = (this.head - this.count + 1) & this.mask;
      this.size -= this.names[oldest]!.length + this.values[oldest]!.length + ENTRY_OVERHEAD;
      // Drop the strings so that the ring holds no more than the table.
      this.names[oldest] = '';
      this.values[oldest] = '';
      this.count--;
    }
  }
}

/**
 * Strings a client sent as literals that the table does not keep, by their
 * coded octets. Some come on every request (nghttp2, under grpc-js, never
 * indexes :path): comparing a few dozen octets costs less than decoding them
 * into a new string each time, which each Map lookup then hashes again.
 */
class RecentLiterals {
  private static readonly SLOTS = 4;
  /** Longer strings are rare enough, and costly enough to compare, to decode. */
  private static readonly MAX_OCTETS = 128;
  private readonly octets: Uint8Array[] = [];
  private readonly huffman: boolean[] = [];
  private readonly values: string[] = [];
  private next = 0;

  /** The string coded by block[start, end), from a recent literal or decoded. */
  get(block: Uint8Array, start: number, end: number, isHuffman: boolean): string {
    const length = end - start;
    if (length > RecentLiterals.MAX_OCTETS) return decodeString(block, start, end, isHuffman);
    for (let slot = 0; slot < this.octets.length; slot++) {
      const octets = this.octets[slot]!;
      if (octets.length === length && this.huffman[slot] === isHuffman && sameOctets(octets, block, start)) return this.values[slot]!;
    }
    const value = decodeString(block, start, end, isHuffman);
    const slot = this.next;
    this.next = (slot + 1) % RecentLiterals.SLOTS;
    this.octets[slot] = block.slice(start, end);
    this.huffman[slot] = isHuffman;
    this.values[slot] = value;
    return value;
  }
}

function decodeString(block: Uint8Array, start: number, end: number, isHuffman: boolean): string {
  return isHuffman ? huffmanDecode(block, start, end) : latin1String(block, start, end);
}

function sameOctets(octets: Uint8Array, block: Uint8Array, start: number): boolean {
  for (let i = 0; i < octets.length; i++) if (octets[i] !== block[start + i]) return false;
  return true;
}

const EMPTY_BLOCK: Uint8Array = new Uint8Array(0);

/** Decodes the header blocks of one connection, in the order they arrive. */
export class HpackDecoder {
  private readonly table: DynamicTable;
  private readonly recentLiterals = new RecentLiterals();
  // The block being decoded and the read position in it.
  private block = EMPTY_BLOCK;
  private pos = 0;

  /** `maxTableSize` is SETTINGS_HEADER_TABLE_SIZE as this end advertised it. */
  constructor(private readonly maxTableSize = 4096) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > MAX_INTEGER) {
      throw new RangeError(`HPACK table size must be an integer from 0 to ${MAX_INTEGER}, not ${maxTableSize}`);
    }
    this.table = new DynamicTable(maxTableSize);
  }

  /** Bytes the dynamic table holds, by the count of section 4.1. */
  get dynamicTableSize(): number {
    return this.table.size;
  }

  /** The dynamic table's entries, newest first (for tests and debugging). */
  dynamicTableEntries(): Array<[string, string]> {
    return Array.from({ length: this.table.count }, (_, age) => [this.table.name(age), this.table.value(age)]);
  }

  /**
   * Decodes one complete header block (HEADERS plus its CONTINUATIONs) into
   * [name0, value0, name1, value1, ...]. Throws HpackError when the block is
   * malformed, and HeaderListTooLarge (after decoding it all, collecting no
   * more fields past the limit) when the list exceeds maxHeaderListBytes.
   */
  decode(block: Uint8Array, maxHeaderListBytes: number): string[] {
    this.block = block;
    this.pos = 0;
    const fields: string[] = [];
    let listBytes = 0;
    let fieldSeen = false;
    while (this.pos < block.length) {
      const first = block[this.pos]!;
      let name: string;
      let value: string;
      if (first & 0x80) {
        // Indexed field (6.1).
        const index = this.readInteger(7);
        name = this.nameAt(index);
        value = this.valueAt(index);
      } else if (first & 0x40) {
        // Literal with incremental indexing (6.2.1).
        name = this.readName(6);
        value = this.readString();
        this.table.add(name, value);
      } else if (first & 0x20) {
        // Dynamic table size update (6.3): only before the first field (4.2).
        if (fieldSeen) throw new HpackError('table size update after a header field');
        const size = this.readInteger(5);
        if (size > this.maxTableSize) throw new HpackError(`table size update to ${size} exceeds ${this.maxTableSize}`);
        this.table.resize(size);
        continue;
      } else {
        // Literal without indexing (6.2.2) or never indexed (6.2.3): likely sent again the same way.
        name = this.readName(4);
        value = this.readString(true);
      }
      fieldSeen = true;
      listBytes += name.length + value.length + ENTRY_OVERHEAD;
      if (listBytes <= maxHeaderListBytes) fields.push(name, value);
    }
    this.block = EMPTY_BLOCK;
    if (listBytes > maxHeaderListBytes) throw new HeaderListTooLarge(listBytes, maxHeaderListBytes);
    return fields;
  }

  private nameAt(index: number): string {
    if (index === 0) throw new HpackError('header field index 0');
    if (index <= STATIC_ENTRIES) return STATIC_NAMES[index]!;
    return this.table.name(this.dynamicAge(index));
  }

  private valueAt(index: number): string {
    if (index <= STATIC_ENTRIES) return STATIC_VALUES[index]!;
    return this.table.value(this.dynamicAge(index));
  }

  private dynamicAge(index: number): number {
    const age = index - STATIC_ENTRIES - 1;
    if (age >= this.table.count) throw new HpackError(`header field index ${index} is past the tables`);
    return age;
  }

  /** A literal's name: an index in the prefix, or 0 and a string after it. */
  private readName(prefixBits: number): string {
    const index = this.readInteger(prefixBits);
    return index === 0 ? this.readString() : this.nameAt(index);
  }

  /** Section 5.2: a Huffman flag and a 7-bit prefix length, then the octets. */
  private readString(recent = false): string {
    const block = this.block;
    if (this.pos >= block.length) throw truncated();
    const isHuffman = block[this.pos]! & 0x80;
    const length = this.readInteger(7);
    const start = this.pos;
    if (length > block.length - start) throw truncated();
    this.pos = start + length;
    return recent ? this.recentLiterals.get(block, start, this.pos, isHuffman !== 0) : decodeString(block, start, this.pos, isHuffman !== 0);
  }

  /** Section 5.1; the caller has checked that the first octet is there. */
  private readInteger(prefixBits: number): number {
    const block = this.block;
    const limit = (1 << prefixBits) - 1;
    let value = block[this.pos++]! & limit;
    if (value < limit) return value;
    for (let shift = 0; ; shift += 7) {
      if (shift > MAX_INTEGER_SHIFT) throw new HpackError('integer has too many octets');
      if (this.pos >= block.length) throw truncated();
      const octet = block[this.pos++]!;
      value += (octet & 0x7f) * 2 ** shift;
      if (!(octet & 0x80)) break;
    }
    if (value > MAX_INTEGER) throw new HpackError(`integer ${value} is too large`);
    return value;
  }
}

function truncated(): HpackError {
  return new HpackError('header block ends inside a field');
}

/** Static index of each name's first entry; entries of one name are adjacent. */
const STATIC_NAME_INDEX = new Map<string, number>();
for (let index = STATIC_ENTRIES; index > 0; index--) STATIC_NAME_INDEX.set(STATIC_NAMES[index]!, index);

/**
 * Encodes a response's fields (lowercase names): a static entry when name
 * and value match one, else a literal without indexing, its name indexed
 * when the static table has it. Strings go raw, without Huffman.
 */
export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const nameIndex = STATIC_NAME_INDEX.get(name);
    if (nameIndex === undefined) {
      out.push(0x00);
      writeRawString(out, name);
      writeRawString(out, value);
      continue;
    }
    const fieldIndex = staticFieldIndex(nameIndex, value);
    if (fieldIndex !== undefined) {
      writeInteger(out, 0x80, 7, fieldIndex);
    } else {
      writeInteger(out, 0x00, 4, nameIndex);
      writeRawString(out, value);
    }
  }
  return Buffer.from(out);
}

function staticFieldIndex(nameIndex: number, value: string): number | undefined {
  const name = STATIC_NAMES[nameIndex];
  for (let index = nameIndex; index <= STATIC_ENTRIES && STATIC_NAMES[index] === name; index++) {
    if (STATIC_VALUES[index] === value) return index;
  }
  return undefined;
}

/** Section 5.1: `value` in a prefix of `prefixBits` under the pattern `flags`. */
function writeInteger(out: number[], flags: number, prefixBits: number, value: number): void {
  const limit = (1 << prefixBits) - 1;
  if (value < limit) {
    out.push(flags | value);
    return;
  }
  out.push(flags | limit);
  let rest = value - limit;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function writeRawString(out: number[], text: string): void {
  writeInteger(out, 0x00, 7, text.length);
  for (let i = 0; i < text.length; i++) {
    const octet = text.charCodeAt(i);
    if (octet > 0xff) throw new RangeError(`header string has a char past latin1 at ${i}`);
    out.push(octet);
  }
}
