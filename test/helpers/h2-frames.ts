/**
 * A raw HTTP/2 client for the transport's protocol tests: it writes the
 * preface and whatever frames a test builds (well-formed or not), and keeps
 * every frame the server sends, its header blocks decoded with HPACK, so a
 * test can await the frame or state it expects instead of sleeping.
 */
import net from 'node:net';

import { DEFAULT_MAX_FRAME_SIZE, FRAME_HEADER_BYTES, Flag, FrameType, frame, settingsPayload, uint32 } from '../../dist/grpc/h2/frames.js';
import { HpackDecoder, encodeHeaderBlock } from '../../dist/grpc/h2/hpack.js';

export { Flag, FrameType, frame, settingsPayload, uint32 };

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** A HEADERS frame's whole header block (with its CONTINUATIONs), decoded, once END_HEADERS arrived. */
  fields?: Record<string, string>;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const WAIT_MS = 3000;

/** A request's header list for `path` (POST, application/grpc) with `extra` fields after it. */
export function requestFields(path: string, extra: Array<[string, string]> = []): Array<[string, string]> {
  return [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', '127.0.0.1'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
}

/** gRPC's length-prefixed message. */
export function grpcMessage(body: Uint8Array, compressed = false): Buffer {
  const bytes = Buffer.alloc(5 + body.byteLength);
  bytes[0] = compressed ? 1 : 0;
  bytes.writeUInt32BE(body.byteLength, 1);
  bytes.set(body, 5);
  return bytes;
}

/** The messages in a run of DATA bytes (throws when they do not end on a message boundary). */
export function grpcMessages(data: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    if (data.length - at < 5) throw new Error(`DATA ends inside a message prefix at ${at}`);
    const length = data.readUInt32BE(at + 1);
    if (data.length - at - 5 < length) throw new Error(`DATA ends inside a ${length}-byte message at ${at}`);
    messages.push(data.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return messages;
}

/** HPACK literal with incremental indexing, new name (RFC 7541 section 6.2.1): the server's table gains an entry. */
export function indexedLiteral(name: string, value: string): Buffer {
  if (name.length > 126 || value.length > 126) throw new RangeError('short strings only');
  return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
}

/** HPACK indexed field (section 6.1); 62 is the newest dynamic entry. */
export function indexedField(index: number): Buffer {
  if (index > 126) throw new RangeError('small indexes only');
  return Buffer.from([0x80 | index]);
}

/** A DATA or HEADERS payload with `padLength` bytes of padding (use with Flag.PADDED). */
export function padded(content: Uint8Array, padLength: number): Buffer {
  return Buffer.concat([Buffer.from([padLength]), content, Buffer.alloc(padLength)]);
}

export interface GoAway {
  lastStreamId: number;
  code: number;
  reason: string;
}

/** What the server sent on one stream. */
export interface StreamView {
  /** Header blocks in order: the response headers, then the trailers. */
  headers: Array<Record<string, string>>;
  data: Buffer;
  dataFrames: Frame[];
  /** RST_STREAM's error code, if the server reset the stream. */
  reset: number | undefined;
  /** The server's side ended (END_STREAM) or the stream was reset. */
  ended: boolean;
  /** Every frame on the stream, in order. */
  frames: Frame[];
}

/**
 * Waits on state that events change (frames arriving, a test method called),
 * so a test awaits the state it expects instead of sleeping: whoever changes
 * the state calls `changed()`, and each pending `until` checks again.
 */
export class Changes {
  private readonly waiters = new Set<() => void>();

  /** Checks every pending `until` again. */
  changed(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Resolves with `check`'s first truthy answer, checked now and at each
   * `changed()`; rejects after `timeoutMs` with `describeTimeout()`'s message
   * (a function, so that it tells the state at the timeout).
   */
  until<T>(check: () => T | undefined | false, timeoutMs: number, describeTimeout: () => string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const test = (): boolean => {
        const value = check();
        if (value === undefined || value === false) return false;
        this.waiters.delete(test);
        clearTimeout(timer);
        resolve(value);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        reject(new Error(describeTimeout()));
      }, timeoutMs);
      if (!test()) this.waiters.add(test);
    });
  }
}

export class H2TestClient {
  readonly frames: Frame[] = [];
  closed = false;
  private readonly decoder = new HpackDecoder();
  private input: Buffer = Buffer.alloc(0);
  private readonly dataBytes = new Map<number, number>();
  private block: { frame: Frame; fragments: Buffer[] } | null = null;
  private readonly changes = new Changes();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /**
   * Connects; with `preface` (the default) writes the client preface and a
   * SETTINGS frame of `settings`, and waits for the server's SETTINGS.
   */
  static async connect(port: number, options: { preface?: boolean; settings?: Array<[number, number]> } = {}): Promise<H2TestClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new H2TestClient(socket);
    if (options.preface ?? true) {
      client.send(PREFACE, frame(FrameType.SETTINGS, 0, 0, settingsPayload(options.settings ?? [])));
      await client.until(() => client.serverSettings());
    }
    return client;
  }

  send(...bytes: Uint8Array[]): void {
    this.socket.write(Buffer.concat(bytes));
  }

  /** A whole header block in one HEADERS frame; `endStream` ends the client's side. */
  headers(streamId: number, fields: Array<[string, string]>, endStream = false): void {
    this.send(frame(FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId, encodeHeaderBlock(fields)));
  }

  /** DATA frames of at most the default frame size (16,384 bytes); an empty one when `bytes` is. */
  data(streamId: number, bytes: Uint8Array, endStream = false): void {
    const frames: Buffer[] = [];
    for (let at = 0; at < bytes.byteLength || at === 0; at += DEFAULT_MAX_FRAME_SIZE) {
      const last = at + DEFAULT_MAX_FRAME_SIZE >= bytes.byteLength;
      frames.push(frame(FrameType.DATA, last && endStream ? Flag.END_STREAM : 0, streamId, bytes.subarray(at, at + DEFAULT_MAX_FRAME_SIZE)));
    }
    this.send(...frames);
  }

  /** A unary (or one-message) request: HEADERS, then the message in one DATA frame ending the stream. */
  request(streamId: number, path: string, body: Uint8Array, extra: Array<[string, string]> = []): void {
    this.headers(streamId, requestFields(path, extra));
    this.data(streamId, grpcMessage(body), true);
  }

  /** Resolves when the server has handled everything sent before it: a PING's ACK. */
  async roundTrip(): Promise<void> {
    const payload = Buffer.from(`rt${Math.floor(Math.random() * 1e6)}`.padEnd(8, '.').slice(0, 8), 'latin1');
    this.send(frame(FrameType.PING, 0, 0, payload));
    await this.until(() => this.frames.some((f) => f.type === FrameType.PING && f.flags & Flag.ACK && f.payload.equals(payload)));
  }

  /** The server's (non-ACK) SETTINGS as a map of id → value, once they arrived. */
  serverSettings(): Map<number, number> | undefined {
    const settings = this.frames.find((f) => f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK));
    if (!settings) return undefined;
    const values = new Map<number, number>();
    for (let at = 0; at < settings.payload.length; at += 6) values.set(settings.payload.readUInt16BE(at), settings.payload.readUInt32BE(at + 2));
    return values;
  }

  /** The server's latest GOAWAY, once sent: its last stream id, error code and reason. */
  goAway(): GoAway | undefined {
    return this.goAways().at(-1);
  }

  /** Every GOAWAY the server sent, in order (a graceful close sends two). */
  goAways(): GoAway[] {
    return this.frames
      .filter((f) => f.type === FrameType.GOAWAY)
      .map((f) => ({ lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), reason: f.payload.subarray(8).toString('utf8') }));
  }

  /** The PINGs the server sent (not its ACKs of the client's); this client answers none by itself. */
  serverPings(): Frame[] {
    return this.frames.filter((f) => f.type === FrameType.PING && !(f.flags & Flag.ACK));
  }

  stream(streamId: number): StreamView {
    const frames = this.frames.filter((f) => f.streamId === streamId);
    const dataFrames = frames.filter((f) => f.type === FrameType.DATA);
    const headers = frames.filter((f) => f.type === FrameType.HEADERS && f.fields).map((f) => f.fields as Record<string, string>);
    const rst = frames.find((f) => f.type === FrameType.RST_STREAM);
    const endStream = frames.some((f) => (f.type === FrameType.DATA || (f.type === FrameType.HEADERS && f.fields)) && f.flags & Flag.END_STREAM);
    return {
      headers,
      data: Buffer.concat(dataFrames.map((f) => f.payload)),
      dataFrames,
      reset: rst?.payload.readUInt32BE(0),
      ended: endStream || rst !== undefined,
      frames,
    };
  }

  /** DATA payload bytes received on the stream so far (cheaper than stream(id).data.length). */
  dataReceived(streamId: number): number {
    return this.dataBytes.get(streamId) ?? 0;
  }

  /** Waits until the stream has ended (END_STREAM or RST_STREAM) and returns what came on it. */
  async response(streamId: number): Promise<StreamView> {
    return this.until(() => {
      const view = this.stream(streamId);
      return view.ended ? view : undefined;
    });
  }

  /** Resolves with `check`'s first truthy answer, checked now and after each frame or the socket's close. */
  until<T>(check: () => T | undefined | false, timeoutMs = WAIT_MS): Promise<T> {
    return this.changes.until(check, timeoutMs, () => `nothing awaited arrived in ${timeoutMs} ms; frames: ${this.describe()}`);
  }

  /** Resolves once the server has closed the connection. */
  whenClosed(): Promise<true> {
    return this.until(() => this.closed);
  }

  close(): void {
    this.socket.destroy();
  }

  /** The frames received, in short (for failure messages). */
  describe(): string {
    const names = Object.fromEntries(Object.entries(FrameType).map(([name, type]) => [type, name]));
    return this.frames
      .slice(-30)
      .map((f) => `${names[f.type] ?? f.type}(s${f.streamId},f${f.flags},${f.payload.length}b)`)
      .join(' ');
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length === 0 ? chunk : Buffer.concat([this.input, chunk]);
    let at = 0;
    while (this.input.length - at >= FRAME_HEADER_BYTES) {
      const length = this.input.readUIntBE(at, 3);
      if (this.input.length - at < FRAME_HEADER_BYTES + length) break;
      const received: Frame = {
        type: this.input[at + 3] as number,
        flags: this.input[at + 4] as number,
        streamId: this.input.readUInt32BE(at + 5) & 0x7fffffff,
        payload: Buffer.from(this.input.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + length)),
      };
      at += FRAME_HEADER_BYTES + length;
      this.frames.push(received);
      if (received.type === FrameType.DATA) this.dataBytes.set(received.streamId, this.dataReceived(received.streamId) + length);
      this.onHeaderFragment(received);
    }
    this.input = this.input.subarray(at);
    this.wake();
  }

  private onHeaderFragment(received: Frame): void {
    if (received.type === FrameType.HEADERS) this.block = { frame: received, fragments: [received.payload] };
    else if (received.type === FrameType.CONTINUATION && this.block) this.block.fragments.push(received.payload);
    else return;
    if (!(received.flags & Flag.END_HEADERS) || !this.block) return;
    const list = this.decoder.decode(Buffer.concat(this.block.fragments), Number.MAX_SAFE_INTEGER);
    const fields: Record<string, string> = {};
    for (let i = 0; i < list.length; i += 2) fields[list[i] as string] = list[i + 1] as string;
    this.block.frame.fields = fields;
    this.block = null;
  }

  private wake(): void {
    this.changes.changed();
  }
}
