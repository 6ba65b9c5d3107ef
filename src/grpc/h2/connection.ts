/**
 * One HTTP/2 connection, the server's side, over a TCP socket: cleartext
 * with prior knowledge ("h2c"), which is how gRPC clients speak to an
 * insecure server. It acts on each frame the FrameReader cuts from the
 * socket's input (frame-reader.ts), keeps the HPACK table in step, opens a
 * stream per request (stream.ts) and hands its header list and DATA to the
 * listener the owner returns; it frames responses under the client's
 * flow-control windows and hands them to the FrameWriter (frame-writer.ts),
 * which batches every frame written in one turn of the event loop into one
 * socket write. node:http2 spends ~50 µs of CPU per call; most of it is
 * per-stream objects this design does not build.
 *
 * Limits, each a protocol error rather than unbounded memory: concurrent
 * streams, header list size, header block size, frame size, and a budget of
 * control frames and client resets per second (RFC 9113 section 10.5; the
 * "rapid reset" attack).
 */
import type { Socket } from 'node:net';

import { FrameReader } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  FRAME_HEADER_BYTES,
  Flag,
  FrameType,
  H2Error,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW,
  Setting,
  frame,
  goAwayPayload,
  settingsPayload,
  uint32,
  writeFrameHeader,
} from './frames.js';
import { HeaderListTooLarge, HpackDecoder, HpackError } from './hpack.js';
import { H2Stream, type QueuedOutput, type StreamListener } from './stream.js';

export { H2Stream, type StreamListener } from './stream.js';

export interface ConnectionOptions {
  maxConcurrentStreams: number;
  /** The largest header list (RFC 7541 sizes: name + value + 32 per field) a request may send. */
  maxHeaderListBytes: number;
  /**
   * A connection with no stream open and nothing read or written for this
   * long is closed gracefully (GOAWAY): a client that vanished, or one that
   * merely holds a socket, does not keep a descriptor for ever. Clients
   * reconnect on their next call.
   */
  idleTimeoutMs: number;
  /**
   * A new stream: its decoded header list (flat: name, value, name, value…)
   * and the stream to answer on; returns who hears of its DATA. Called with
   * `headersTooLarge` true (and the list empty) when the list passed
   * maxHeaderListBytes: the owner answers with an error.
   */
  onStream(stream: H2Stream, headers: string[], headersTooLarge: boolean): StreamListener;
}

/** Receive windows: large, since the gRPC layer bounds each message itself and reads everything at once. */
const STREAM_WINDOW = 4 * 1024 * 1024;
const CONNECTION_WINDOW = 64 * 1024 * 1024;
/** The largest frame clients may send: large frames cost fewer headers for big tensors. */
const MAX_RECEIVED_FRAME = 1024 * 1024;
/** A header block (HEADERS + CONTINUATION) past this is refused outright, before decoding. */
const MAX_HEADER_BLOCK_BYTES = 256 * 1024;
/** PING, SETTINGS and client RST_STREAM frames (of requests not yet whole) allowed per second before the connection is judged abusive. */
const CONTROL_FRAMES_PER_SECOND = 2000;
/** A connection that has not sent the whole preface by then is closed: an open socket that says nothing holds a descriptor. */
const PREFACE_TIMEOUT_MS = 10_000;
/** How long a connection closed for an error waits for its GOAWAY to be written. */
const CLOSE_GRACE_MS = 1000;
/** The highest stream id: the first GOAWAY of a graceful close names it, refusing nothing yet. */
const MAX_STREAM_ID = 0x7fffffff;
/** The PING sent with that GOAWAY: a fixed payload, so that the ACK of another PING (a keepalive's) is not taken for it. */
const SHUTDOWN_PING = Buffer.from('shutdown', 'latin1');
/** How long a graceful close waits for that PING's ACK before sending the final GOAWAY anyway. */
const SHUTDOWN_PING_WAIT_MS = 1000;

export class H2Connection {
  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder = new HpackDecoder();
  /** Streams with DATA queued that the windows hold back. */
  private readonly blocked = new Set<H2Stream>();
  private lastStreamId = 0;
  private closed = false;
  /** A graceful close has begun: the first GOAWAY and its PING are sent. */
  private shuttingDown = false;
  /** The final GOAWAY is sent: new streams are refused, the socket ends once the open ones are answered. */
  private goingAway = false;
  /** Sends the final GOAWAY if the PING's ACK is slow to come. */
  private shutdownTimer: NodeJS.Timeout | null = null;
  private goAwayReason = 'server shutting down';

  private readonly reader: FrameReader;
  private readonly writer: FrameWriter;
  /** A header block whose CONTINUATION frames are still to come. */
  private continuing: { streamId: number; endStream: boolean; fragments: Buffer[]; bytes: number; cost: number } | null = null;

  // The client's settings and windows (what this side may send).
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  private sendWindow = DEFAULT_WINDOW;
  private receiveWindow = CONNECTION_WINDOW;

  private controlFrames = 0;
  private controlWindowStart = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly socket: Socket,
    private readonly options: ConnectionOptions,
  ) {
    socket.setNoDelay(true);
    this.reader = new FrameReader(MAX_RECEIVED_FRAME, {
      frame: (type, flags, streamId, payload) => {
        this.onFrame(type, flags, streamId, payload);
        return !this.closed;
      },
      notHttp2: () => {
        // Not HTTP/2 with prior knowledge (an HTTP/1.1 request, TLS, noise): nothing to answer in its protocol.
        this.socket.destroy();
        this.closed = true;
      },
      frameTooLarge: (length) => this.fail(H2Error.FRAME_SIZE_ERROR, `a ${length}-byte frame; the most this server accepts is ${MAX_RECEIVED_FRAME}`),
    });
    this.writer = new FrameWriter(socket);
    this.writer.write(
      frame(
        FrameType.SETTINGS,
        0,
        0,
        settingsPayload([
          [Setting.ENABLE_PUSH, 0],
          [Setting.MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
          [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
          [Setting.MAX_FRAME_SIZE, MAX_RECEIVED_FRAME],
          [Setting.MAX_HEADER_LIST_SIZE, options.maxHeaderListBytes],
        ]),
      ),
    );
    this.writer.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32(CONNECTION_WINDOW - DEFAULT_WINDOW)));
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      try {
        this.reader.read(chunk);
      } catch (error) {
        // A fault of this server's, not the client's (those are protocol errors): it costs this connection, never the process.
        this.fail(H2Error.INTERNAL_ERROR, `internal error: ${(error as Error)?.message ?? String(error)}`);
      }
    });
    socket.on('error', () => {}); // 'close' follows: streams are reset there
    socket.on('close', () => this.lost());
    const prefaceTimer = setTimeout(() => this.reader.prefaceRead || socket.destroy(), PREFACE_TIMEOUT_MS).unref();
    socket.once('close', () => clearTimeout(prefaceTimer));
    // Node restarts the socket's timer on every read and write, but fires it only once.
    socket.setTimeout(options.idleTimeoutMs);
    socket.on('timeout', () => {
      if (this.streams.size === 0) this.goAway('idle');
      else socket.setTimeout(options.idleTimeoutMs); // a quiet call: look again later
    });
  }

  /** Calls `visit` with the listener of each stream open now. */
  forEachListener(visit: (listener: StreamListener) => void): void {
    for (const stream of this.streams.values()) if (stream.listener) visit(stream.listener);
  }

  /**
   * Graceful close, in two steps (RFC 9113 section 6.8; as gRPC's servers do
   * it): a GOAWAY naming the highest stream id, with a PING. Streams the
   * client sent before it read that GOAWAY are still on their way; they are
   * served. Once the PING's ACK is back, all of them have arrived: the final
   * GOAWAY names the last stream that will be answered, later ones are
   * refused, and the socket ends once the open ones are answered.
   */
  goAway(reason: 'server shutting down' | 'idle' = 'server shutting down'): void {
    if (this.closed || this.shuttingDown) return;
    this.shuttingDown = true;
    this.goAwayReason = reason;
    this.writer.write(frame(FrameType.GOAWAY, 0, 0, goAwayPayload(MAX_STREAM_ID, H2Error.NO_ERROR, reason)));
    this.writer.write(frame(FrameType.PING, 0, 0, SHUTDOWN_PING));
    // A client that never answers PINGs still gets the final GOAWAY.
    this.shutdownTimer = setTimeout(() => this.finalGoAway(), SHUTDOWN_PING_WAIT_MS).unref();
  }

  private finalGoAway(): void {
    this.clearShutdownTimer();
    if (this.closed || this.goingAway) return;
    this.goingAway = true;
    this.writer.write(frame(FrameType.GOAWAY, 0, 0, goAwayPayload(this.lastStreamId, H2Error.NO_ERROR, this.goAwayReason)));
    this.endIfIdle();
  }

  private clearShutdownTimer(): void {
    if (this.shutdownTimer) clearTimeout(this.shutdownTimer);
    this.shutdownTimer = null;
  }

  /** Closes at once: streams in flight are reset, their listeners told before this returns. */
  destroy(): void {
    this.socket.destroy();
    // 'close' comes a turn later, after the server's own 'close' (whose owner may stop what the listeners use).
    this.lost();
  }

  // --- input -------------------------------------------------------------

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.continuing && type !== FrameType.CONTINUATION) return this.fail(H2Error.PROTOCOL_ERROR, 'a header block was interrupted by another frame');
    switch (type) {
      case FrameType.DATA:
        return this.onDataFrame(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.onHeadersFrame(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      case FrameType.RST_STREAM:
        return this.onReset(streamId, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case FrameType.PING:
        return this.onPing(flags, streamId, payload);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      case FrameType.GOAWAY:
        if (streamId !== 0) return this.fail(H2Error.PROTOCOL_ERROR, 'GOAWAY on a stream');
        return; // the client stops opening streams; those open are still answered
      case FrameType.PRIORITY:
        if (streamId === 0) return this.fail(H2Error.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) this.resetById(streamId, H2Error.FRAME_SIZE_ERROR);
        return; // priorities are advisory; every stream is served as it comes
      case FrameType.PUSH_PROMISE:
        return this.fail(H2Error.PROTOCOL_ERROR, 'a client may not push');
      default:
        return; // unknown frame types are ignored (RFC 9113 section 4.1)
    }
  }

  private onHeadersFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.fail(H2Error.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let fragment = this.unpad(flags, payload);
    if (fragment === null) return;
    if (flags & Flag.PRIORITY) {
      if (fragment.length < 5) return this.fail(H2Error.FRAME_SIZE_ERROR, 'HEADERS too short for its priority fields');
      fragment = fragment.subarray(5);
    }
    // One HEADERS frame may be as large as any frame: the block's limit holds for it too.
    if (fragment.length > MAX_HEADER_BLOCK_BYTES) return this.fail(H2Error.ENHANCE_YOUR_CALM, `a header block past ${MAX_HEADER_BLOCK_BYTES} bytes`);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) return this.onHeaderBlock(streamId, fragment, endStream);
    this.continuing = { streamId, endStream, fragments: [fragment], bytes: fragment.length, cost: fragment.length };
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.continuing;
    if (!block || block.streamId !== streamId) return this.fail(H2Error.PROTOCOL_ERROR, 'CONTINUATION without a header block to continue');
    block.fragments.push(payload);
    block.bytes += payload.length;
    // Each frame costs its header too: endless empty CONTINUATIONs (the "CONTINUATION flood") add no bytes to the block.
    block.cost += FRAME_HEADER_BYTES + payload.length;
    if (block.cost > MAX_HEADER_BLOCK_BYTES) return this.fail(H2Error.ENHANCE_YOUR_CALM, `a header block past ${MAX_HEADER_BLOCK_BYTES} bytes`);
    if (!(flags & Flag.END_HEADERS)) return;
    this.continuing = null;
    this.onHeaderBlock(streamId, Buffer.concat(block.fragments, block.bytes), block.endStream);
  }

  private onHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    // Decoded whatever becomes of the stream: the HPACK table must stay in step with the client's.
    let headers: string[] = [];
    let tooLarge = false;
    try {
      headers = this.decoder.decode(block, this.options.maxHeaderListBytes);
    } catch (error) {
      if (error instanceof HeaderListTooLarge) tooLarge = true;
      else if (error instanceof HpackError) return this.fail(H2Error.COMPRESSION_ERROR, error.message);
      else throw error;
    }

    const stream = this.streams.get(streamId);
    if (stream) {
      // Trailers from the client: they must end its side.
      if (!endStream || stream.remoteEnded) return this.resetStream(stream, H2Error.PROTOCOL_ERROR);
      return this.remoteEnd(stream);
    }
    if (streamId % 2 === 0) return this.fail(H2Error.PROTOCOL_ERROR, `stream ${streamId}: clients open odd-numbered streams`);
    if (streamId <= this.lastStreamId) return; // a stream already closed (perhaps reset by this side): ignored
    this.lastStreamId = streamId;
    if (this.goingAway || this.streams.size >= this.options.maxConcurrentStreams) {
      this.writer.write(frame(FrameType.RST_STREAM, 0, streamId, uint32(H2Error.REFUSED_STREAM)));
      return;
    }
    const opened = new H2Stream(this, streamId, this.peerInitialWindow, STREAM_WINDOW);
    this.streams.set(streamId, opened);
    // Known before onStream answers: an answer that ends the stream at once need not reset a stream the client ended.
    opened.remoteEnded = endStream;
    opened.listener = this.options.onStream(opened, headers, tooLarge);
    if (endStream && !opened.closed) this.remoteEnd(opened);
  }

  private onDataFrame(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.fail(H2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    // The whole payload, padding included, counts against the windows.
    if (payload.length > this.receiveWindow) return this.fail(H2Error.FLOW_CONTROL_ERROR, 'DATA past the connection window');
    this.receiveWindow -= payload.length;
    if (this.receiveWindow < CONNECTION_WINDOW / 2) {
      this.writer.write(frame(FrameType.WINDOW_UPDATE, 0, 0, uint32(CONNECTION_WINDOW - this.receiveWindow)));
      this.receiveWindow = CONNECTION_WINDOW;
    }
    const stream = this.streams.get(streamId);
    if (!stream) {
      if (streamId > this.lastStreamId) return this.fail(H2Error.PROTOCOL_ERROR, `DATA on stream ${streamId}, which was never opened`);
      return; // a closed stream: frames the client sent before it learned so
    }
    if (stream.remoteEnded) return this.resetStream(stream, H2Error.STREAM_CLOSED);
    if (payload.length > stream.receiveWindow) return this.resetStream(stream, H2Error.FLOW_CONTROL_ERROR);
    stream.receiveWindow -= payload.length;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (!endStream && stream.receiveWindow < STREAM_WINDOW / 2) {
      this.writer.write(frame(FrameType.WINDOW_UPDATE, 0, streamId, uint32(STREAM_WINDOW - stream.receiveWindow)));
      stream.receiveWindow = STREAM_WINDOW;
    }
    const data = this.unpad(flags, payload);
    if (data === null) return;
    // As for HEADERS: an answer the data completes (a refused message) must not reset a stream this frame ended.
    stream.remoteEnded = endStream;
    if (data.length > 0) stream.listener?.data(data);
    if (endStream && !stream.closed) this.remoteEnd(stream);
  }

  private onReset(streamId: number, payload: Buffer): void {
    if (streamId === 0) return this.fail(H2Error.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) return this.fail(H2Error.FRAME_SIZE_ERROR, 'RST_STREAM must carry 4 bytes');
    const stream = this.streams.get(streamId);
    // Only a stream reset before its request was whole counts: that is the
    // "rapid reset" pattern. A client cancelling calls it has sent (deadlines
    // passing under load) may do so as often as it sends them.
    if (stream && !stream.remoteEnded && !this.withinControlBudget()) return;
    if (stream) this.close(stream);
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.fail(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & Flag.ACK) {
      if (payload.length !== 0) this.fail(H2Error.FRAME_SIZE_ERROR, 'a SETTINGS acknowledgement carries nothing');
      return;
    }
    if (payload.length % 6 !== 0) return this.fail(H2Error.FRAME_SIZE_ERROR, 'SETTINGS must carry 6 bytes per setting');
    if (!this.withinControlBudget()) return;
    for (let at = 0; at < payload.length; at += 6) {
      const id = payload.readUInt16BE(at);
      const value = payload.readUInt32BE(at + 2);
      if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW) return this.fail(H2Error.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value} is past 2^31-1`);
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) return this.fail(H2Error.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE ${value} takes stream ${stream.id}'s window past 2^31-1`);
        }
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) return this.fail(H2Error.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} is out of range`);
        this.peerMaxFrameSize = value;
      } else if (id === Setting.ENABLE_PUSH && value > 1) {
        return this.fail(H2Error.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH ${value} is not 0 or 1`);
      }
      // HEADER_TABLE_SIZE: this side's header blocks never use the dynamic table. The others concern pushes.
    }
    this.writer.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const stream of this.streams.values()) if (stream.queue.length > 0) this.pump(stream);
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) return this.fail(H2Error.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) return this.fail(H2Error.FRAME_SIZE_ERROR, 'PING must carry 8 bytes');
    if (flags & Flag.ACK) {
      if (this.shuttingDown && payload.equals(SHUTDOWN_PING)) this.finalGoAway();
      return;
    }
    if (!this.withinControlBudget()) return;
    this.writer.write(frame(FrameType.PING, Flag.ACK, 0, payload));
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) return this.fail(H2Error.FRAME_SIZE_ERROR, 'WINDOW_UPDATE must carry 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) return this.fail(H2Error.PROTOCOL_ERROR, 'a WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) return this.fail(H2Error.FLOW_CONTROL_ERROR, 'the connection window passed 2^31-1');
      for (const stream of [...this.blocked]) this.pump(stream);
      return;
    }
    const stream = this.streams.get(streamId);
    if (!stream) return;
    if (increment === 0) return this.resetStream(stream, H2Error.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) return this.resetStream(stream, H2Error.FLOW_CONTROL_ERROR);
    this.pump(stream);
  }

  /** A padded frame's content, or null after failing the connection for a bad pad length. */
  private unpad(flags: number, payload: Buffer): Buffer | null {
    if (!(flags & Flag.PADDED)) return payload;
    const padding = payload.length > 0 ? (payload[0] as number) : 0;
    if (payload.length === 0 || padding >= payload.length) {
      this.fail(H2Error.PROTOCOL_ERROR, 'padding longer than its frame');
      return null;
    }
    return payload.subarray(1, payload.length - padding);
  }

  /** Counts a control frame; past the budget, fails the connection and returns false. */
  private withinControlBudget(): boolean {
    // A second from the first frame counted, not a clock-aligned one: a burst straddling a second's boundary is still one burst.
    const now = performance.now();
    if (now - this.controlWindowStart >= 1000) {
      this.controlWindowStart = now;
      this.controlFrames = 0;
    }
    if (++this.controlFrames <= CONTROL_FRAMES_PER_SECOND) return true;
    this.fail(H2Error.ENHANCE_YOUR_CALM, `more than ${CONTROL_FRAMES_PER_SECOND} PING, SETTINGS and early RST_STREAM frames in a second`);
    return false;
  }

  // --- streams -----------------------------------------------------------

  private remoteEnd(stream: H2Stream): void {
    stream.remoteEnded = true;
    stream.listener?.end();
    if (stream.localEnded) this.forget(stream);
  }

  /** This side has sent its last frame on the stream. */
  localEnd(stream: H2Stream): void {
    stream.localEnded = true;
    this.blocked.delete(stream);
    if (!stream.remoteEnded) {
      // Answered before the client finished sending: tell it to stop (RFC 9113 section 8.1).
      this.writer.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32(H2Error.NO_ERROR)));
    }
    this.forget(stream);
  }

  resetStream(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    this.writer.write(frame(FrameType.RST_STREAM, 0, stream.id, uint32(code)));
    this.close(stream);
  }

  private resetById(streamId: number, code: number): void {
    const stream = this.streams.get(streamId);
    if (stream) this.resetStream(stream, code);
    else this.writer.write(frame(FrameType.RST_STREAM, 0, streamId, uint32(code)));
  }

  /** Closes a stream that did not end normally: its listener hears of it. */
  private close(stream: H2Stream): void {
    if (stream.closed) return;
    this.forget(stream);
    stream.listener?.reset();
  }

  private forget(stream: H2Stream): void {
    stream.closed = true;
    stream.queue.length = 0;
    this.blocked.delete(stream);
    this.streams.delete(stream.id);
    if (this.goingAway) this.endIfIdle();
  }

  private endIfIdle(): void {
    if (this.streams.size > 0 || this.closed) return;
    this.closed = true;
    this.writer.flush();
    this.socket.end();
  }

  // --- output ------------------------------------------------------------

  writeHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    const endFlag = endStream ? Flag.END_STREAM : 0;
    if (block.length <= this.peerMaxFrameSize) {
      this.writer.write(frame(FrameType.HEADERS, endFlag | Flag.END_HEADERS, streamId, block));
      return;
    }
    for (let at = 0; at < block.length; at += this.peerMaxFrameSize) {
      const part = block.subarray(at, at + this.peerMaxFrameSize);
      const last = at + this.peerMaxFrameSize >= block.length ? Flag.END_HEADERS : 0;
      this.writer.write(at === 0 ? frame(FrameType.HEADERS, endFlag | last, streamId, part) : frame(FrameType.CONTINUATION, last, streamId, part));
    }
  }

  /** Sends what the stream has queued, as far as the windows allow. */
  pump(stream: H2Stream): void {
    const { queue } = stream;
    while (queue.length > 0 && !stream.closed) {
      const next = queue[0] as QueuedOutput;
      if (!(next instanceof Uint8Array)) {
        queue.shift();
        this.writeHeaders(stream.id, next.trailers, true);
        this.localEnd(stream);
        return;
      }
      const allowed = Math.min(this.sendWindow, stream.sendWindow, this.peerMaxFrameSize);
      if (allowed <= 0) {
        this.blocked.add(stream);
        return;
      }
      const length = Math.min(allowed, next.byteLength);
      const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      writeFrameHeader(header, 0, length, FrameType.DATA, 0, stream.id);
      this.writer.write(header);
      this.writer.write(length === next.byteLength ? next : next.subarray(0, length));
      if (length === next.byteLength) queue.shift();
      else queue[0] = next.subarray(length);
      this.sendWindow -= length;
      stream.sendWindow -= length;
    }
    this.blocked.delete(stream);
  }

  /** A connection error: GOAWAY with its code and reason, then the socket closes. */
  private fail(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.writer.write(frame(FrameType.GOAWAY, 0, 0, goAwayPayload(this.lastStreamId, code, reason)));
    this.writer.flush();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.lost();
  }

  /** The socket is gone (or failed): every open stream is reset. */
  private lost(): void {
    this.closed = true;
    this.clearShutdownTimer();
    const open = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    for (const stream of open) {
      stream.closed = true;
      stream.listener?.reset();
    }
  }
}
