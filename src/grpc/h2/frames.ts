/**
 * HTTP/2's frame layer (RFC 9113 section 4 and 6): the frame types, flags,
 * settings and error codes the server uses, and the 9-byte frame header.
 */

export const FRAME_HEADER_BYTES = 9;

/** What a client sends first (RFC 9113 section 3.4), before its SETTINGS frame. */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const H2Error = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** The protocol's defaults, before any SETTINGS frame. */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_FRAME_SIZE_LIMIT = 2 ** 24 - 1;
export const MAX_WINDOW = 2 ** 31 - 1;

/** A frame header followed by its payload, in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Uint8Array): Buffer {
  const length = payload?.byteLength ?? 0;
  const bytes = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  writeFrameHeader(bytes, 0, length, type, flags, streamId);
  if (payload) bytes.set(payload, FRAME_HEADER_BYTES);
  return bytes;
}

export function writeFrameHeader(into: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  into[at] = length >>> 16;
  into[at + 1] = (length >>> 8) & 0xff;
  into[at + 2] = length & 0xff;
  into[at + 3] = type;
  into[at + 4] = flags;
  into.writeUInt32BE(streamId, at + 5);
}

/** A 4-byte big-endian payload (RST_STREAM's error code, WINDOW_UPDATE's increment). */
export function uint32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** SETTINGS' payload: 6 bytes per (identifier, value). */
export function settingsPayload(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const bytes = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    bytes.writeUInt16BE(id, 6 * i);
    bytes.writeUInt32BE(value, 6 * i + 2);
  });
  return bytes;
}

/** GOAWAY's payload: the last stream the server will answer, an error code and a reason. */
export function goAwayPayload(lastStreamId: number, code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 256), 'utf8');
  const bytes = Buffer.allocUnsafe(8 + text.length);
  bytes.writeUInt32BE(lastStreamId);
  bytes.writeUInt32BE(code, 4);
  text.copy(bytes, 8);
  return bytes;
}
