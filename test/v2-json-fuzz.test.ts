/**
 * Fuzzing the native lifter (native/src/json_lift.cc) against JSON.parse.
 * Seeded random V2 bodies, valid and then mutated byte by byte, must come
 * out of parseV2Json as JSON.parse gives them (the lifted numbers flat and
 * bit for bit, the id out of its skeleton) or be refused with JSON.parse's
 * own message. The scanner reads bytes a client sent, in C++: this is where
 * a mistake would be a wrong tensor or a crash. Deterministic: a failure
 * names the case's seed and body. WEIR_FUZZ_SCALE=N runs N times as many
 * cases (a deeper search, by hand).
 */
import { describe, expect, it } from 'vitest';

import { parseV2Json } from '../dist/http/v2-json.js';
import { JSON_ALPHABET, SCALE, mutate, random } from './helpers/fuzz.js';

/** Writes random V2 request bodies: what clients send, and the odd corners JSON allows. */
class BodyWriter {
  constructor(private readonly next: () => number) {}

  body(): string {
    const members = [`"inputs":${this.list(1 + this.int(3), () => this.input())}`];
    if (this.chance(0.5)) members.push(`"id":${this.string()}`);
    if (this.chance(0.2)) members.push(`"parameters":{${this.key('timeout')}:${this.number()}}`);
    if (this.chance(0.2)) members.push(`"outputs":[{"name":${this.string()}}]`);
    if (this.chance(0.05)) members.push(`"inputs":[]`); // a repeated key: the last one wins
    return this.object(members);
  }

  private input(): string {
    const members = [
      `${this.key('name')}:${this.string()}`,
      `${this.key('datatype')}:"${this.pick(['FP32', 'FP64', 'INT32', 'INT64', 'BOOL', 'BYTES'])}"`,
      `${this.key('shape')}:[${this.int(4)},${this.int(40)}]`,
      `${this.key('data')}:${this.data(this.int(4))}`,
    ];
    if (this.chance(0.1)) members.push(`"parameters":{"binary_data_size":${this.int(100)}}`);
    if (this.chance(0.03)) members.push(`"data":${this.data(1)}`);
    return this.object(members);
  }

  private data(depth: number): string {
    if (depth === 0 || this.chance(0.3)) return this.list(this.int(12), () => this.element());
    return this.list(1 + this.int(3), () => this.data(depth - 1));
  }

  private element(): string {
    const r = this.next();
    if (r < 0.985) return this.number();
    if (r < 0.99) return this.pick(['true', 'false', 'null']);
    if (r < 0.995) return this.string();
    return this.pick(['[]', '{}', '{"a":1}']);
  }

  number(): string {
    const n = this.next;
    const forms = [
      () => String(Math.floor(n() * 1000) - 500),
      () => String((n() * 2 - 1) * 10 ** (this.int(40) - 20)),
      () => (n() * 2 - 1).toFixed(this.int(20)),
      () => `${this.int(1e9)}e${this.pick(['', '+', '-'])}${this.int(330)}`, // now and then past double's range
      () => `-0${this.pick(['', '.0', 'e5', 'E-0'])}`,
      () => `${this.int(10)}.${'9'.repeat(1 + this.int(30))}`,
      () => String(this.int(2 ** 53) * 2 ** this.int(20)),
      () => `0.${'0'.repeat(this.int(330))}${1 + this.int(9)}`,
      () => String(Math.fround(n() * 1e6)),
    ];
    return this.pick(forms)();
  }

  private string(): string {
    const pieces = ['a', 'Z', '0', ' ', 'é', '€', '😀', '\\"', '\\\\', '\\/', '\\n', '\\t', '\\u0041', '\\ud83d\\ude00', 'data', 'inputs', 'id', '[', ']', '{', ',', ':'];
    let text = '';
    for (let i = this.int(8); i > 0; i--) text += this.pick(pieces);
    return `"${text}"`;
  }

  /** A key as written, now and then with an escape that spells the same name. */
  private key(name: string): string {
    if (!this.chance(0.03)) return `"${name}"`;
    const at = this.int(name.length);
    return `"${name.slice(0, at)}\\u00${name.charCodeAt(at).toString(16)}${name.slice(at + 1)}"`;
  }

  private object(members: string[]): string {
    for (let i = members.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [members[i], members[j]] = [members[j] as string, members[i] as string];
    }
    return `${this.space()}{${members.map((member) => this.space() + member.replace(/":/, `"${this.space()}:${this.space()}`)).join(',')}${this.space()}}${this.space()}`;
  }

  private list(count: number, item: () => string): string {
    const items: string[] = [];
    for (let i = 0; i < count; i++) items.push(this.space() + item() + this.space());
    return `[${items.join(',')}]`;
  }

  private space(): string {
    return this.chance(0.85) ? '' : this.pick([' ', '\n', '\t', '\r\n', '  ']);
  }

  private chance(p: number): boolean {
    return this.next() < p;
  }

  private int(below: number): number {
    return Math.floor(this.next() * below);
  }

  private pick<T>(choices: readonly T[]): T {
    return choices[this.int(choices.length)] as T;
  }
}

/** Object.is all the way down: -0 is not 0, and a lifted number must be JSON.parse's to the bit. */
function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return Object.is(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) => key in b && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

/** The parsed body with what the addon lifted out put back, to compare with JSON.parse's. */
function reassembled(text: Buffer, header: boolean, expected: { inputs?: unknown; id?: unknown }): unknown {
  const parsed = parseV2Json(new Uint8Array(text), header);
  const json = structuredClone(parsed.json) as { inputs?: Array<{ data?: unknown }>; id?: unknown };
  if (parsed.id !== undefined) {
    if (json.id !== '') throw new Error(`the id was lifted, but the skeleton's id reads ${JSON.stringify(json.id)}`);
    json.id = parsed.id;
  }
  const inputs = Array.isArray(json.inputs) ? json.inputs : [];
  inputs.forEach((input, i) => {
    const lifted = parsed.liftedData(i);
    if (lifted === undefined) return;
    if (input.data !== 0) throw new Error(`inputs[${i}].data was lifted, but the skeleton reads ${JSON.stringify(input.data)}`);
    const data = (expected.inputs as Array<{ data: unknown }>)[i]?.data;
    const flat = Array.isArray(data) ? data.flat(Infinity) : [data];
    if (flat.length !== lifted.length || !flat.every((value, k) => Object.is(value, lifted[k]))) {
      throw new Error(`inputs[${i}].data lifted as [${[...lifted].join(',')}], JSON.parse gives [${flat.join(',')}]`);
    }
    input.data = data;
  });
  return json;
}

/** What is wrong with parseV2Json's result for `text`, or null when it agrees with JSON.parse. */
function disagreement(text: Buffer, header: boolean): string | null {
  let expected: unknown;
  let expectedError: string | null = null;
  try {
    expected = JSON.parse(text.toString('utf8'));
  } catch (error) {
    expectedError = (error as Error).message;
  }
  let got: unknown;
  try {
    got = reassembled(text, header, (expected ?? {}) as object);
  } catch (error) {
    const message = (error as Error).message;
    if (expectedError === null) return `refused a valid body: ${message}`;
    return message === expectedError ? null : `refused with "${message}", JSON.parse says "${expectedError}"`;
  }
  if (expectedError !== null) return `accepted a body JSON.parse refuses (${expectedError})`;
  return sameJson(got, expected) ? null : `parsed as ${JSON.stringify(got)}`;
}

function fuzz(cases: number, seed: number, body: (writer: BodyWriter, next: () => number) => Buffer): string[] {
  const failures: string[] = [];
  for (let i = 0; i < cases * SCALE && failures.length < 5; i++) {
    const next = random(seed + i);
    const text = body(new BodyWriter(next), next);
    const header = next() < 0.1;
    const problem = disagreement(text, header);
    if (problem) failures.push(`case ${seed + i}${header ? ' (as a binary header)' : ''}: ${problem}\n  body: ${JSON.stringify(text.toString('latin1'))}`);
  }
  return failures;
}

describe('the native lifter against JSON.parse, fuzzed', () => {
  it('parses random V2 bodies to what JSON.parse gives', () => {
    expect(fuzz(8000, 1_000_000, (writer) => Buffer.from(writer.body(), 'utf8'))).toEqual([]);
  }, 30_000 * SCALE);

  it('parses or refuses mutated bodies exactly as JSON.parse does', () => {
    expect(fuzz(20_000, 2_000_000, (writer, next) => mutate(Buffer.from(writer.body(), 'utf8'), next, JSON_ALPHABET))).toEqual([]);
  }, 30_000 * SCALE);

  it('gives the same answer for a body whose skeleton it has already cached', () => {
    // Same skeleton, other numbers: the second parse takes the cached path.
    expect(
      fuzz(3000, 3_000_000, (writer, next) => {
        const text = writer.body();
        parseV2Json(new Uint8Array(Buffer.from(text, 'utf8')));
        return Buffer.from(next() < 0.5 ? text : text.replace(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g, () => writer.number()), 'utf8');
      }),
    ).toEqual([]);
  }, 30_000 * SCALE);
});
