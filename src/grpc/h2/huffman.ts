/**
 * The HPACK Huffman code (RFC 7541 section 5.2 and Appendix B).
 *
 * The code is canonical: codes are handed out in order of increasing length,
 * and within one length in symbol order. So the code lengths alone define it;
 * the codes and the decoding table are built from them once, at load.
 *
 * Decoding walks a state machine four bits at a time. A state is an internal
 * node of the code tree (256 of them; 0 is the root), so one table of
 * 256 x 16 entries (16 KiB) answers "from this node, after these four bits".
 * No code is shorter than five bits, so a nibble completes at most one symbol.
 */

import { HpackError } from './hpack.js';

/** Code length in bits of each symbol: the octets 0..255, then EOS (256). */
const CODE_LENGTHS = Uint8Array.of(
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
);

const EOS = 256;
const SYMBOLS = CODE_LENGTHS.length;

/** The canonical code of each symbol, right-aligned (up to 30 bits). */
const CODES = assignCanonicalCodes(CODE_LENGTHS);

function assignCanonicalCodes(lengths: Uint8Array): Uint32Array {
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]! || a - b);
  const codes = new Uint32Array(lengths.length);
  let code = 0;
  let length = lengths[order[0]!]!;
  for (const symbol of order) {
    code *= 2 ** (lengths[symbol]! - length);
    length = lengths[symbol]!;
    codes[symbol] = code;
    code += 1;
  }
  return codes;
}

// A decoding table entry packs the node reached, the symbol completed on the
// way (if any), whether the way hit EOS, and whether the node may end a string.
const NEXT_NODE_MASK = 0xff;
const SYMBOL_SHIFT = 8;
const EMITS = 1 << 16;
const MAY_END = 1 << 17;
const HIT_EOS = 1 << 18;

const DECODE_TABLE = buildDecodeTable();

function buildDecodeTable(): Uint32Array {
  // The tree: children[2 * node + bit] is an internal node, or ~symbol for a
  // leaf; 0 (the root, never a child) marks a slot not yet filled.
  const children = new Int32Array(2 * (SYMBOLS - 1));
  // A node may end a string when its path is at most 7 one-bits: that is the
  // padding section 5.2 allows (the most significant bits of EOS).
  const mayEnd = new Uint8Array(SYMBOLS - 1);
  mayEnd[0] = 1;
  let nodes = 1;
  for (let symbol = 0; symbol < SYMBOLS; symbol++) {
    const length = CODE_LENGTHS[symbol]!;
    const code = CODES[symbol]!;
    let node = 0;
    // Walk the code's bits from the top, making the nodes its prefixes reach.
    for (let bitsLeft = length - 1; bitsLeft > 0; bitsLeft--) {
      const slot = 2 * node + ((code >>> bitsLeft) & 1);
      if (children[slot] === 0) {
        children[slot] = nodes;
        const prefixLength = length - bitsLeft;
        const isAllOnes = code >>> bitsLeft === 2 ** prefixLength - 1;
        mayEnd[nodes] = isAllOnes && prefixLength <= 7 ? 1 : 0;
        nodes++;
      }
      node = children[slot]!;
    }
    children[2 * node + (code & 1)] = ~symbol;
  }

  const table = new Uint32Array((SYMBOLS - 1) * 16);
  for (let state = 0; state < SYMBOLS - 1; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[2 * node + ((nibble >>> bit) & 1)]!;
        if (child >= 0) {
          node = child;
          continue;
        }
        const symbol = ~child;
        entry |= symbol === EOS ? HIT_EOS : EMITS | (symbol << SYMBOL_SHIFT);
        node = 0;
      }
      table[state * 16 + nibble] = entry | node | (mayEnd[node] ? MAY_END : 0);
    }
  }
  return table;
}

/** Decoded octets land here before they become a string; grows on demand. */
let scratch = Buffer.allocUnsafe(256);

/**
 * Decodes the Huffman-coded octets bytes[start, end) into a string of one
 * char per octet (latin1). Throws HpackError for a coding section 5.2
 * forbids: EOS inside the string, or padding that is not 0-7 one-bits.
 */
export function huffmanDecode(bytes: Uint8Array, start: number, end: number): string {
  // Every symbol takes at least five bits.
  const maxOutput = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < maxOutput) scratch = Buffer.allocUnsafe(Math.max(maxOutput, 2 * scratch.length));
  const out = scratch;
  let length = 0;
  let state = 0;
  let entry = MAY_END;
  for (let i = start; i < end; i++) {
    const octet = bytes[i]!;
    const high = DECODE_TABLE[(state << 4) | (octet >>> 4)]!;
    if (high & EMITS) out[length++] = (high >>> SYMBOL_SHIFT) & 0xff;
    entry = DECODE_TABLE[((high & NEXT_NODE_MASK) << 4) | (octet & 15)]!;
    if (entry & EMITS) out[length++] = (entry >>> SYMBOL_SHIFT) & 0xff;
    if ((high | entry) & HIT_EOS) throw new HpackError('Huffman string contains EOS');
    state = entry & NEXT_NODE_MASK;
  }
  if (!(entry & MAY_END)) throw new HpackError('Huffman string has invalid padding');
  return latin1String(out, 0, length);
}

/** Up to this length, a loop makes a string faster than the native call. */
const SHORT_STRING = 8;

/** The string of octets bytes[start, end), one char per octet. */
export function latin1String(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= SHORT_STRING) {
    let text = '';
    for (let i = start; i < end; i++) text += String.fromCharCode(bytes[i]!);
    return text;
  }
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buffer.toString('latin1', start, end);
}

/** Octets the Huffman coding of a latin1 string takes. */
export function huffmanEncodedLength(value: string): number {
  let bits = 0;
  for (let i = 0; i < value.length; i++) bits += CODE_LENGTHS[octetAt(value, i)]!;
  return Math.ceil(bits / 8);
}

/** The Huffman coding of a latin1 string, padded with the high bits of EOS. */
export function huffmanEncode(value: string): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(value));
  let written = 0;
  // Pending bits, at most 7 + 30: a double holds them exactly.
  let pending = 0;
  let pendingBits = 0;
  for (let i = 0; i < value.length; i++) {
    const symbol = octetAt(value, i);
    pending = pending * 2 ** CODE_LENGTHS[symbol]! + CODES[symbol]!;
    pendingBits += CODE_LENGTHS[symbol]!;
    while (pendingBits >= 8) {
      pendingBits -= 8;
      const high = Math.floor(pending / 2 ** pendingBits);
      out[written++] = high;
      pending -= high * 2 ** pendingBits;
    }
  }
  if (pendingBits > 0) out[written] = (pending << (8 - pendingBits)) | (0xff >>> pendingBits);
  return out;
}

function octetAt(value: string, index: number): number {
  const octet = value.charCodeAt(index);
  if (octet > 0xff) throw new RangeError(`header string has a char past latin1 at ${index}`);
  return octet;
}
