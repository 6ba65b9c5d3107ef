/**
 * One HTTP/2 stream, as the code answering a request sees it: it sends the
 * response's headers, DATA and trailers through the stream, and hears of
 * the request's DATA, its end or a reset through the StreamListener it gave
 * the connection. The stream is only state and a queue; its connection
 * frames what is queued, under the flow-control windows kept here.
 */
import type { H2Connection } from './connection.js';

/** What happens to a stream, from the client's side. */
export interface StreamListener {
  /** A DATA frame's payload, padding removed: a view, valid for as long as the listener keeps it. */
  data(chunk: Buffer): void;
  /** The client ended its side of the stream. */
  end(): void;
  /** The stream was reset or its connection lost before both sides ended: no answer can reach the client. */
  reset(): void;
}

/** What a stream has queued to send: DATA, or the trailers that end it. */
export type QueuedOutput = Uint8Array | { trailers: Buffer };

export class H2Stream {
  /** Set by the connection from onStream's answer. */
  listener: StreamListener | null = null;
  sendWindow: number;
  receiveWindow: number;
  remoteEnded = false;
  localEnded = false;
  closed = false;
  /** DATA (and the trailers after it) waiting for the client's windows. */
  readonly queue: QueuedOutput[] = [];

  constructor(
    private readonly connection: H2Connection,
    readonly id: number,
    sendWindow: number,
    receiveWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
  }

  /** Sends the response's header block; with `endStream`, the response ends there (gRPC's trailers-only answer). */
  respond(block: Buffer, endStream = false): void {
    if (this.closed || this.localEnded) return;
    this.connection.writeHeaders(this.id, block, endStream);
    if (endStream) this.connection.localEnd(this);
  }

  /** Queues DATA, sent as the client's windows allow. */
  write(data: Uint8Array): void {
    if (this.closed || this.localEnded || data.byteLength === 0) return;
    this.queue.push(data);
    this.connection.pump(this);
  }

  /** Queues the trailers, which end the stream once every DATA before them is sent. */
  end(trailers: Buffer): void {
    if (this.closed || this.localEnded) return;
    this.queue.push({ trailers });
    this.connection.pump(this);
  }
}
