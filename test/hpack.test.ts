import { describe, expect, it } from 'vitest';

import { HeaderListTooLarge, HpackDecoder, HpackError, encodeHeaderBlock } from '../src/grpc/h2/hpack.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../src/grpc/h2/huffman.js';
import { SCALE, mutate, random } from './helpers/fuzz.js';

const hex = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/** Decodes every block on one decoder, checking each list and the table after it (RFC 7541 Appendix C). */
function expectSequence(
  decoder: HpackDecoder,
  steps: Array<{ block: string; fields: string[]; table: Array<[string, string]>; tableSize: number }>,
): void {
  for (const step of steps) {
    expect(decoder.decode(hex(step.block), NO_LIMIT)).toEqual(step.fields);
    expect(decoder.dynamicTableEntries()).toEqual(step.table);
    expect(decoder.dynamicTableSize).toBe(step.tableSize);
  }
}

const decodeHuffman = (bytes: Uint8Array): string => huffmanDecode(bytes, 0, bytes.length);

describe('Huffman coding', () => {
  it('assigns the codes of Appendix B', () => {
    // Symbol, code, length: a few from each end of the table.
    const samples: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [65, 0x21, 6],
      [126, 0x1ffd, 13],
      [255, 0x3ffffee, 26],
    ];
    for (const [symbol, code, length] of samples) {
      const bytes = huffmanEncode(String.fromCharCode(symbol));
      expect(bytes.length).toBe(Math.ceil(length / 8));
      const bits = bytes.reduce((acc, octet) => acc * 256 + octet, 0);
      const padding = bytes.length * 8 - length;
      expect(Math.floor(bits / 2 ** padding)).toBe(code);
      expect(bits % 2 ** padding).toBe(2 ** padding - 1);
    }
  });

  it('round-trips every octet, alone and in one string', () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, octet) => octet));
    for (const text of [...all, all, all + all, '', 'application/grpc', '99m']) {
      const encoded = huffmanEncode(text);
      expect(encoded.length).toBe(huffmanEncodedLength(text));
      expect(decodeHuffman(encoded)).toBe(text);
    }
  });

  it('decodes within a range of a larger buffer', () => {
    const encoded = huffmanEncode('custom-value');
    const framed = Uint8Array.from([0xaa, ...encoded, 0x55]);
    expect(huffmanDecode(framed, 1, 1 + encoded.length)).toBe('custom-value');
  });

  it('rejects padding longer than 7 bits', () => {
    // '0' is 00000: then 3 + 8 one-bits.
    expect(() => decodeHuffman(hex('07 ff'))).toThrow(HpackError);
    expect(() => decodeHuffman(hex('ff'))).toThrow(/padding/);
  });

  it('rejects padding that is not the high bits of EOS', () => {
    expect(() => decodeHuffman(hex('00'))).toThrow(/padding/);
    expect(() => decodeHuffman(hex('06'))).toThrow(/padding/);
    expect(decodeHuffman(hex('07'))).toBe('0');
  });

  it('rejects EOS inside a string', () => {
    expect(() => decodeHuffman(hex('ff ff ff ff'))).toThrow(/EOS/);
    // EOS, then 'a' and padding.
    expect(() => decodeHuffman(hex('ff ff ff fc 7f'))).toThrow(/EOS/);
  });

  it('refuses to encode a char past latin1', () => {
    expect(() => huffmanEncode('€')).toThrow(RangeError);
  });
});

describe('HPACK decoding: RFC 7541 Appendix C', () => {
  it('C.2: literal and indexed fields', () => {
    const decoder = new HpackDecoder();
    expectSequence(decoder, [
      {
        block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572',
        fields: ['custom-key', 'custom-header'],
        table: [['custom-key', 'custom-header']],
        tableSize: 55,
      },
    ]);
    for (const [block, fields] of [
      ['040c 2f73 616d 706c 652f 7061 7468', [':path', '/sample/path']],
      ['1008 7061 7373 776f 7264 0673 6563 7265 74', ['password', 'secret']],
      ['82', [':method', 'GET']],
    ] as const) {
      const fresh = new HpackDecoder();
      expect(fresh.decode(hex(block), NO_LIMIT)).toEqual(fields);
      expect(fresh.dynamicTableEntries()).toEqual([]);
      expect(fresh.dynamicTableSize).toBe(0);
    }
  });

  const requestFields = [
    [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
    [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
    [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
  ];
  const requestTables: Array<Array<[string, string]>> = [
    [[':authority', 'www.example.com']],
    [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
  ];
  const requestTableSizes = [57, 110, 164];

  it('C.3: requests without Huffman coding', () => {
    const blocks = [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ];
    expectSequence(
      new HpackDecoder(),
      blocks.map((block, i) => ({ block, fields: requestFields[i]!, table: requestTables[i]!, tableSize: requestTableSizes[i]! })),
    );
  });

  it('C.4: requests with Huffman coding', () => {
    const blocks = [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ];
    expectSequence(
      new HpackDecoder(),
      blocks.map((block, i) => ({ block, fields: requestFields[i]!, table: requestTables[i]!, tableSize: requestTableSizes[i]! })),
    );
  });

  const location = 'https://www.example.com';
  const date21 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const date22 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
  const responseFields = [
    [':status', '302', 'cache-control', 'private', 'date', date21, 'location', location],
    [':status', '307', 'cache-control', 'private', 'date', date21, 'location', location],
    [':status', '200', 'cache-control', 'private', 'date', date22, 'location', location, 'content-encoding', 'gzip', 'set-cookie', cookie],
  ];
  // A 256-byte table: the second and third responses evict.
  const responseTables: Array<Array<[string, string]>> = [
    [
      ['location', location],
      ['date', date21],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
    [
      [':status', '307'],
      ['location', location],
      ['date', date21],
      ['cache-control', 'private'],
    ],
    [
      ['set-cookie', cookie],
      ['content-encoding', 'gzip'],
      ['date', date22],
    ],
  ];
  const responseTableSizes = [222, 222, 215];

  it('C.5: responses without Huffman coding, evicting from a 256-byte table', () => {
    const blocks = [
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d
       546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f
       6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b
       2076 6572 7369 6f6e 3d31`,
    ];
    expectSequence(
      new HpackDecoder(256),
      blocks.map((block, i) => ({ block, fields: responseFields[i]!, table: responseTables[i]!, tableSize: responseTableSizes[i]! })),
    );
  });

  it('C.6: responses with Huffman coding, evicting from a 256-byte table', () => {
    const blocks = [
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7
       8f0b 97c8 e9ae 82ae 43d3`,
      '4883 640e ffc1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335
       dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ];
    expectSequence(
      new HpackDecoder(256),
      blocks.map((block, i) => ({ block, fields: responseFields[i]!, table: responseTables[i]!, tableSize: responseTableSizes[i]! })),
    );
  });
});

/** A literal with incremental indexing and a new name, strings raw. */
function indexedLiteral(name: string, value: string): number[] {
  return [0x40, name.length, ...Buffer.from(name, 'latin1'), value.length, ...Buffer.from(value, 'latin1')];
}

describe('HPACK decoding: the dynamic table', () => {
  it('keeps the newest entries as the ring wraps around many times', () => {
    // 128 bytes hold three entries of 36 bytes ('kNN', 'v' and 32).
    const decoder = new HpackDecoder(128);
    for (let i = 0; i < 40; i++) decoder.decode(Uint8Array.from(indexedLiteral(`k${i}`, 'v')), NO_LIMIT);
    expect(decoder.dynamicTableEntries()).toEqual([
      ['k39', 'v'],
      ['k38', 'v'],
      ['k37', 'v'],
    ]);
    expect(decoder.dynamicTableSize).toBe(3 * 36);
    // Index 62 is the newest, 64 the oldest.
    expect(decoder.decode(hex('be c0'), NO_LIMIT)).toEqual(['k39', 'v', 'k37', 'v']);
  });

  it('empties the table for an entry larger than the table', () => {
    const decoder = new HpackDecoder(64);
    decoder.decode(Uint8Array.from(indexedLiteral('a', 'b')), NO_LIMIT);
    expect(decoder.dynamicTableSize).toBe(34);
    expect(decoder.decode(Uint8Array.from(indexedLiteral('name', 'x'.repeat(40))), NO_LIMIT)).toEqual(['name', 'x'.repeat(40)]);
    expect(decoder.dynamicTableEntries()).toEqual([]);
    expect(decoder.dynamicTableSize).toBe(0);
  });

  it('evicts on a table size update at the start of a block, and grows back up to the advertised size', () => {
    const decoder = new HpackDecoder();
    decoder.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'), NO_LIMIT);
    // Size 0, then 4096 (31 + 0x61 + 0x1f << 7), then an indexed field.
    expect(decoder.decode(hex('20 3fe11f 82'), NO_LIMIT)).toEqual([':method', 'GET']);
    expect(decoder.dynamicTableEntries()).toEqual([]);
    decoder.decode(Uint8Array.from(indexedLiteral('a', 'b')), NO_LIMIT);
    expect(decoder.dynamicTableSize).toBe(34);
  });

  it('rejects a table size update past the advertised size', () => {
    expect(() => new HpackDecoder().decode(hex('3fe21f'), NO_LIMIT)).toThrow(/exceeds 4096/);
    expect(() => new HpackDecoder(256).decode(hex('3fe201'), NO_LIMIT)).toThrow(HpackError);
  });

  it('refuses a table size that is not a 31-bit count', () => {
    for (const size of [-1, 1.5, 2 ** 31, Number.NaN]) expect(() => new HpackDecoder(size)).toThrow(RangeError);
    expect(new HpackDecoder(0).decode(Uint8Array.from(indexedLiteral('a', 'b')), NO_LIMIT)).toEqual(['a', 'b']);
  });

  it('rejects a table size update after a field', () => {
    expect(() => new HpackDecoder().decode(hex('82 20'), NO_LIMIT)).toThrow(/after a header field/);
  });
});

describe('HPACK decoding: literals without indexing, sent again', () => {
  /** A literal without indexing (6.2.2) of :path (static name 4), its value Huffman-coded or raw. */
  const pathLiteral = (value: string, huffman: boolean): Uint8Array => {
    const octets = huffman ? huffmanEncode(value) : Uint8Array.from(Buffer.from(value, 'latin1'));
    return Uint8Array.from([0x04, (huffman ? 0x80 : 0) | octets.length, ...octets]);
  };

  it('decodes each block to its own value, however recently the same octets or a value of the same length came', () => {
    const decoder = new HpackDecoder();
    const paths = ['/inference.GRPCInferenceService/ModelInfer', '/inference.GRPCInferenceService/ModelReady', '/a', '/b', '/c', '/d', '/e'];
    for (let round = 0; round < 3; round++) {
      for (const path of paths) {
        for (const huffman of [true, false]) expect(decoder.decode(pathLiteral(path, huffman), NO_LIMIT)).toEqual([':path', path]);
      }
    }
    expect(decoder.dynamicTableEntries()).toEqual([]);
  });

  it('tells a raw string from a Huffman-coded one with the same octets', () => {
    const decoder = new HpackDecoder();
    const coded = huffmanEncode('/x');
    const asRaw = Uint8Array.from([0x04, coded.length, ...coded]);
    const asHuffman = Uint8Array.from([0x04, 0x80 | coded.length, ...coded]);
    expect(decoder.decode(asHuffman, NO_LIMIT)).toEqual([':path', '/x']);
    expect(decoder.decode(asRaw, NO_LIMIT)).toEqual([':path', Buffer.from(coded).toString('latin1')]);
    expect(decoder.decode(asHuffman, NO_LIMIT)).toEqual([':path', '/x']);
  });

  it('still rejects a malformed Huffman literal every time it comes', () => {
    const decoder = new HpackDecoder();
    // All ones: 30 bits of EOS inside the string.
    const block = Uint8Array.from([0x04, 0x84, 0xff, 0xff, 0xff, 0xff]);
    expect(() => decoder.decode(block, NO_LIMIT)).toThrow(HpackError);
    expect(() => decoder.decode(block, NO_LIMIT)).toThrow(HpackError);
  });
});

describe('HPACK decoding: malformed blocks', () => {
  const decodeFresh = (block: string) => new HpackDecoder().decode(hex(block), NO_LIMIT);

  it('rejects index 0 and indices past both tables', () => {
    expect(() => decodeFresh('80')).toThrow(/index 0/);
    expect(() => decodeFresh('be')).toThrow(/index 62 is past/);
    // A literal whose name index is past the tables.
    expect(() => decodeFresh('7f00 0161')).toThrow(/index 63 is past/);
    expect(() => decodeFresh('0f30 0161')).toThrow(HpackError);
  });

  it('rejects a block that ends inside a field', () => {
    for (const block of [
      // A string longer than the rest of the block.
      '400a 6375 7374 6f6d',
      // A name and no value.
      '04',
      '40 0161',
      // An integer whose continuation is missing.
      'ff',
      'ff 80',
      // A string length whose continuation is missing.
      '40 7f',
    ]) {
      expect(() => decodeFresh(block), block).toThrow(/ends inside a field/);
    }
  });

  it('rejects integers too large or too long', () => {
    // 127 + 127 + ... + 15 << 28: past 2^31 in five continuation octets.
    expect(() => decodeFresh('ff ff ff ff ff 0f')).toThrow(/too large/);
    // Six continuation octets, even though the value is small.
    expect(() => decodeFresh('ff 80 80 80 80 80 00')).toThrow(/too many octets/);
    // The largest index five octets allow below 2^31 is only past the tables.
    expect(() => decodeFresh('ff 80 80 80 80 07')).toThrow(/past the tables/);
  });
});

describe('HPACK decoding: the header list limit', () => {
  // C.3.1's list: (7+3) + (7+4) + (5+1) + (10+15) octets, plus 32 per field.
  const firstRequest = hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d');
  const secondRequest = hex('8286 84be 5808 6e6f 2d63 6163 6865');

  it('accepts a list at the limit', () => {
    expect(new HpackDecoder().decode(firstRequest, 180)).toHaveLength(8);
  });

  it('refuses a list past the limit, still keeping the table in step', () => {
    const decoder = new HpackDecoder();
    let thrown: unknown;
    try {
      decoder.decode(firstRequest, 179);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(HeaderListTooLarge);
    expect(thrown).not.toBeInstanceOf(HpackError);
    expect(thrown).toMatchObject({ listBytes: 180, limit: 179 });
    expect(decoder.dynamicTableEntries()).toEqual([[':authority', 'www.example.com']]);
    expect(decoder.decode(secondRequest, NO_LIMIT)).toEqual([
      ...[':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
      ...['cache-control', 'no-cache'],
    ]);
  });
});

describe('HPACK encoding', () => {
  it('indexes a static field, names a static name, and writes a new name raw', () => {
    expect(encodeHeaderBlock([[':status', '200']])).toEqual(Buffer.from([0x88]));
    expect(encodeHeaderBlock([['content-type', 'application/grpc']])).toEqual(
      Buffer.concat([Buffer.from([0x0f, 0x10, 0x10]), Buffer.from('application/grpc')]),
    );
    expect(encodeHeaderBlock([['grpc-status', '0']])).toEqual(Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.from('grpc-status'), Buffer.from([0x01, 0x30])]));
  });

  it('writes blocks that decode back to their fields, leaving the table empty', () => {
    const fields: Array<[string, string]> = [
      [':status', '200'],
      [':status', '500'],
      [':status', '418'],
      [':method', 'POST'],
      ['content-type', 'application/grpc'],
      ['accept-encoding', 'gzip, deflate'],
      ['accept-encoding', 'identity'],
      ['www-authenticate', ''],
      ['grpc-status', '0'],
      ['grpc-message', 'x'.repeat(300)],
      ['x'.repeat(200), 'latin1 \u00e9\u00ff'],
    ];
    const decoder = new HpackDecoder();
    expect(decoder.decode(encodeHeaderBlock(fields), NO_LIMIT)).toEqual(fields.flat());
    expect(decoder.dynamicTableSize).toBe(0);
  });

  it('refuses a char past latin1', () => {
    expect(() => encodeHeaderBlock([['grpc-message', '€']])).toThrow(RangeError);
  });
});

describe('HPACK decoding: fuzzed', () => {
  // Small, so that blocks evict as often as they add.
  const TABLE_SIZE = 256;
  const raw = (text: string) => Buffer.concat([Buffer.of(text.length), Buffer.from(text, 'latin1')]);
  const coded = (text: string) => {
    const bytes = huffmanEncode(text);
    return Buffer.concat([Buffer.of(0x80 | bytes.length), bytes]);
  };

  /** A block using every representation: static and dynamic indices, each literal kind, Huffman or raw, a size update. */
  function block(next: () => number): Buffer {
    const text = () => Array.from({ length: Math.floor(next() * 40) }, () => String.fromCharCode(32 + Math.floor(next() * 95))).join('');
    const string = (value: string) => (next() < 0.5 ? coded(value) : raw(value));
    const parts: Buffer[] = [];
    if (next() < 0.1) parts.push(Buffer.of(0x3f, 0x80 + Math.floor(next() * 128), 0x01)); // a table size update (160-287), first in the block
    for (let n = 1 + Math.floor(next() * 6); n > 0; n--) {
      const kind = next();
      if (kind < 0.25) parts.push(Buffer.of(0x80 | (1 + Math.floor(next() * 61)))); // static
      else if (kind < 0.35) parts.push(Buffer.of(0x80 | (62 + Math.floor(next() * 2)))); // dynamic: past the table if it holds fewer
      else if (kind < 0.7) parts.push(Buffer.concat([Buffer.of(0x40), string(`x-${text()}`), string(text())])); // indexed from now on
      else if (kind < 0.85) parts.push(Buffer.concat([Buffer.of(next() < 0.5 ? 0x00 : 0x10), string(`y-${text()}`), string(text())]));
      else parts.push(encodeHeaderBlock([[':path', `/${text()}`], ['te', 'trailers']]));
    }
    return Buffer.concat(parts);
  }

  it('decodes or refuses mangled blocks with an HPACK error only, the table within its size', () => {
    const alphabet = Uint8Array.of(0x00, 0x0f, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xbe, 0xff);
    const problems: string[] = [];
    for (let i = 0; i < 4000 * SCALE && problems.length < 5; i++) {
      const next = random(13_000_000 + i);
      // One decoder per connection: blocks after the first see the table the earlier ones left.
      const decoder = new HpackDecoder(TABLE_SIZE);
      for (let b = 0; b < 5; b++) {
        const bytes = block(next);
        const sent = next() < 0.4 ? mutate(bytes, next, alphabet) : bytes;
        try {
          const fields = decoder.decode(sent, 8192);
          if (fields.length % 2 !== 0 || fields.some((field) => typeof field !== 'string')) problems.push(`case ${13_000_000 + i}: decoded to ${JSON.stringify(fields)}`);
        } catch (error) {
          if (!(error instanceof HpackError || error instanceof HeaderListTooLarge)) problems.push(`case ${13_000_000 + i}: ${String(error)} from ${sent.toString('hex')}`);
          break; // a connection ends at its first compression error
        }
        if (decoder.dynamicTableSize > TABLE_SIZE) problems.push(`case ${13_000_000 + i}: the table holds ${decoder.dynamicTableSize} bytes`);
      }
    }
    expect(problems).toEqual([]);
  }, 30_000 * SCALE);
});
