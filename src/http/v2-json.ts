/**
 * JSON.parse for V2 infer bodies, with the numbers of `inputs[i].data` parsed
 * natively (native/src/json_lift.h). JSON.parse spends most of a small
 * body's time on those numbers, each a heap number that the decoder then
 * copies into a TypedArray. The addon parses them into doubles and hands
 * JSON.parse the rest, the skeleton, with each lifted array replaced by 0.
 *
 * A client's requests mostly share one skeleton (same names, datatypes and
 * shapes; only the numbers differ), so small skeletons are kept parsed and
 * frozen, and a repeated one is not parsed again.
 *
 * Nothing about the result differs from JSON.parse's: a body the addon is
 * unsure of is parsed as it is, and a skeleton JSON.parse refuses is parsed
 * again as sent, so that the error message describes the body the client sent.
 */
import { nativeAddon } from '../native/addon.js';

/** Skeletons up to this length are kept parsed... */
const CACHED_SKELETON_CHARS = 1024;
/** ...this many of them (then the cache starts again), so at most 256 KiB of text. */
const CACHED_SKELETONS = 256;

/** Where the addon writes the lifted numbers; a body with more gets an array of its own. */
const scratch = new Float64Array(8192);
const skeletons = new Map<string, unknown>();

export class ParsedBody {
  constructor(
    /** The body as JSON.parse gives it, except that lifted `data` arrays read 0. */
    readonly json: unknown,
    /** [inputs, start0, end0, ...]; then the numbers (json_lift.h). */
    private readonly lifted: Float64Array | null,
    /**
     * `json` is a cached skeleton, frozen and shared by every body that sends
     * it: what a caller derives from it alone may be cached along with it.
     */
    readonly shared = false,
  ) {}

  /**
   * The numbers of `inputs[index].data` when they were lifted, flat, else
   * undefined. A view of memory the next parse reuses: copy before then.
   */
  liftedData(index: number): Float64Array | undefined {
    const lifted = this.lifted;
    if (lifted === null || index >= (lifted[0] as number)) return undefined;
    const start = lifted[1 + 2 * index] as number;
    return start < 0 ? undefined : lifted.subarray(start, lifted[2 + 2 * index]);
  }
}

/** Parses a V2 JSON body; throws JSON.parse's SyntaxError when it is not JSON. */
export function parseV2Json(bytes: Uint8Array): ParsedBody {
  const result = nativeAddon().liftJsonData(bytes, scratch);
  if (result === null) return new ParsedBody(JSON.parse(utf8(bytes)), null);
  const [skeleton, lifted] = typeof result === 'string' ? [result, scratch] : result;
  const cached = skeletons.get(skeleton);
  if (cached !== undefined) return new ParsedBody(cached, lifted, true);
  let json: unknown;
  try {
    json = JSON.parse(skeleton);
  } catch {
    return new ParsedBody(JSON.parse(utf8(bytes)), null); // throws, describing the body as sent
  }
  if (skeleton.length > CACHED_SKELETON_CHARS) return new ParsedBody(json, lifted);
  if (skeletons.size >= CACHED_SKELETONS) skeletons.clear();
  skeletons.set(skeleton, deepFreeze(json));
  return new ParsedBody(json, lifted, true);
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
