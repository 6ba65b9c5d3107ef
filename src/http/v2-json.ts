/**
 * JSON.parse for V2 infer bodies, with the numbers of `inputs[i].data` parsed
 * natively (native/src/json_lift.h). JSON.parse spends most of a small
 * body's time on those numbers, each a heap number that the decoder then
 * copies into a TypedArray. The addon parses them into doubles and hands
 * JSON.parse the rest, the skeleton, with each lifted array replaced by 0.
 *
 * A client's requests mostly share one skeleton (same names, datatypes and
 * shapes; only the numbers differ), so small skeletons are kept parsed and
 * frozen, and a repeated one is not parsed again: the addon recognises it
 * and answers with the number it gave it, not the text.
 *
 * Nothing about the result differs from JSON.parse's: a body the addon is
 * unsure of is parsed as it is, and a skeleton JSON.parse refuses is parsed
 * again as sent, so that the error message describes the body the client sent.
 */
import { nativeAddon } from '../native/addon.js';

/** Where the addon writes the lifted numbers; a body with more gets an array of its own. */
const scratch = new Float64Array(8192);
/** A skeleton JSON.parse refused: its bodies are parsed as sent, for the error. */
const UNPARSABLE = Symbol('unparsable');
/** Parsed, frozen skeletons by the id the addon gave them (it numbers at most 256, then starts again). */
const skeletons: unknown[] = [];

export class ParsedBody {
  constructor(
    /** The body as JSON.parse gives it, except that lifted `data` arrays read 0. */
    readonly json: unknown,
    /** [skeletonId, idStart, idEnd, inputs, start0, end0, ...]; then the numbers (addon.cc). */
    private readonly lifted: Float64Array | null,
    /**
     * `json` is a cached skeleton, frozen and shared by every body that sends
     * it: what a caller derives from it alone may be cached along with it.
     */
    readonly shared = false,
    /**
     * The body's `id` when the addon lifted it out of the skeleton (whose
     * `id` then reads ""), so that requests differing only in their ids
     * share one skeleton; undefined when `json.id` is the body's own.
     */
    readonly id?: string,
  ) {}

  /**
   * The numbers of `inputs[index].data` when they were lifted, flat, else
   * undefined. A view of memory the next parse reuses: copy before then.
   */
  liftedData(index: number): Float64Array | undefined {
    const lifted = this.lifted;
    if (lifted === null || index >= (lifted[3] as number)) return undefined;
    const start = lifted[4 + 2 * index] as number;
    return start < 0 ? undefined : lifted.subarray(start, lifted[5 + 2 * index]);
  }
}

/**
 * Parses a V2 JSON body; throws JSON.parse's SyntaxError when it is not JSON.
 * `header`: the JSON is the header of a binary request, which is cached as
 * a skeleton even with no numbers to lift (it repeats as skeletons do; a
 * JSON body with nothing to lift, such as one of strings, may well not).
 */
export function parseV2Json(bytes: Uint8Array, header = false): ParsedBody {
  const addon = nativeAddon();
  let lifted = scratch;
  let result = addon.liftJsonData(bytes, lifted, header);
  if (typeof result === 'number' && result < 0) {
    lifted = new Float64Array(-result); // more numbers than the scratch holds: this body's own array
    result = addon.liftJsonData(bytes, lifted, header);
  }
  if (result === null) return new ParsedBody(JSON.parse(utf8(bytes)), null);
  const idStart = lifted[1] as number;
  const id = idStart < 0 ? undefined : utf8(bytes.subarray(idStart, lifted[2]));
  if (typeof result === 'number') {
    const json = skeletons[result];
    return json === UNPARSABLE ? unparsable(bytes) : new ParsedBody(json, lifted, true, id);
  }
  const skeletonId = lifted[0] as number;
  let json: unknown;
  try {
    json = JSON.parse(result);
  } catch {
    if (skeletonId >= 0) skeletons[skeletonId] = UNPARSABLE;
    return unparsable(bytes);
  }
  if (skeletonId < 0) return new ParsedBody(json, lifted, false, id);
  skeletons[skeletonId] = deepFreeze(json);
  return new ParsedBody(json, lifted, true, id);
}

/** Throws, describing the body as sent rather than its skeleton. */
function unparsable(bytes: Uint8Array): never {
  JSON.parse(utf8(bytes));
  throw new Error('unreachable: a body whose skeleton is not JSON is not JSON either');
}

function utf8(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/** A cached skeleton is shared by every request that sends it: nothing may change it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
