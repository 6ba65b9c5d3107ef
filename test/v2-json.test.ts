/**
 * The native lifting of `inputs[i].data` (native/src/json_lift.cc, src/http/v2-json.ts)
 * must be invisible: every body decodes to what JSON.parse alone gives, and
 * every refusal reads the same. These tests compare the two on the same bodies.
 */
import { describe, expect, it } from 'vitest';

import { decodeInferRequest } from '../dist/http/v2-codec.js';
import { decodeV2Json } from '../dist/http/v2-jobs.js';
import { parseV2Json } from '../dist/http/v2-json.js';
import { fromJsonData, fromJsonNumbers } from '../dist/tensors/json-data.js';
import { DATATYPES } from '../dist/tensors/datatypes.js';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
const body = (data: string, extra = '') => `{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":${data}}]${extra}}`;

/** The numbers of inputs[0].data as decoded, lifted or not. */
function decodedNumbers(text: string): number[] {
  const { request } = decodeInferRequest(bytes(text), undefined, 'm');
  return Array.from(request.inputs[0]?.data as Float64Array);
}

/** Whatever decodeInferRequest throws for `text`, as { code, message }. */
function refusal(text: string): { code: string; message: string } | null {
  try {
    decodeInferRequest(bytes(text), undefined, 'm');
    return null;
  } catch (error) {
    const { code, message } = error as { code: string; message: string };
    return { code, message };
  }
}

/** Numbers written the many ways JSON allows, from a seeded generator. */
function numberTexts(count: number): string[] {
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const forms = [
    () => (next() * 2 - 1).toFixed(Math.floor(next() * 18)),
    () => String(next() * 10 ** Math.floor(next() * 60 - 30)),
    () => String(Math.floor(next() * 2 ** 62)),
    () => `${Math.floor(next() * 1e9)}e${Math.floor(next() * 50 - 25)}`,
    () => `-${next()}E+${Math.floor(next() * 6)}`,
    () => `0.${'0'.repeat(Math.floor(next() * 12))}${Math.floor(next() * 1e12)}`,
    () => String(Math.fround(next() * 1000 - 500)),
    () => `${Math.floor(next() * 1e6)}.${'9'.repeat(1 + Math.floor(next() * 25))}`,
  ];
  return Array.from({ length: count }, () => (forms[Math.floor(next() * forms.length)] as () => string)());
}

describe('lifting the numbers of inputs[i].data', () => {
  it('gives exactly the doubles JSON.parse gives, in every way a number can be written', () => {
    const texts = [
      ...numberTexts(20_000),
      '0', '-0', '0.0', '-0.0', '1', '-1', '0e0', '1E5', '1e-5', '1.5e+3', '123456789012345678901234567890',
      '9007199254740993', '5e-324', '2.2250738585072014e-308', '1.7976931348623157e308', '0.1', '0.30000000000000004',
    ];
    const text = body(`[${texts.join(',')}]`);
    expect(parseV2Json(bytes(text)).liftedData(0)).toBeDefined();
    const got = decodedNumbers(text);
    const expected = (JSON.parse(text) as { inputs: Array<{ data: number[] }> }).inputs[0]?.data as number[];
    expect(got.length).toBe(expected.length);
    const differing = expected.flatMap((value, i) => (Object.is(got[i], value) ? [] : [`${texts[i]}: ${got[i]} vs ${value}`]));
    expect(differing).toEqual([]);
  });

  it('flattens nested arrays as the JSON path does, and handles whitespace anywhere', () => {
    const text = ' { "inputs" : [ { "name":"x", "datatype":"FP64", "shape":[2,2], "data" : [ [ 1 , 2.5 ] ,\n\t[ -3 , [ 4e1 ] ] ] } ] } ';
    expect(parseV2Json(bytes(text)).liftedData(0)).toBeDefined();
    expect(decodedNumbers(text)).toEqual([1, 2.5, -3, 40]);
  });

  it('leaves to JSON.parse what it does not lift, with the same result', () => {
    const cases = [
      body('[1e400, -1e400, 1e-400]'), // out of double's range
      body('[1, "2", 3]'),
      body('[true, false]'),
      body('[]'),
      body('[[], []]'),
      body('[1, null]'),
      `{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1],"data":[2]}]}`, // repeated key: the last wins
      `{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"d\\u0061ta":[7]}]}`, // an escaped key
      `{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1]}],"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[2]}]}`,
      `{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[${'['.repeat(70)}5${']'.repeat(70)}]}]}`,
    ];
    for (const text of cases) {
      const parsed = parseV2Json(bytes(text));
      expect(parsed.json, text).toEqual(JSON.parse(text));
      const jsonPath = refusal(text) ?? decodedNumbers(text);
      expect(jsonPath, text).toEqual(refusal(text) ?? (JSON.parse(text).inputs[0].data as unknown[]).flat(Infinity));
    }
  });

  it('refuses bodies that are not JSON with JSON.parse\'s own message about the body as sent', () => {
    const cases = [
      body('[1,]'), body('[01]'), body('[1 2]'), body('[.5]'), body('[1.]'), body('[+1]'), body('[-]'), body('[1e]'),
      body('[1]', ','), body('[1]') + 'x', body('[1]').slice(0, -1), body('[1]', ', "id": "a\u0001b"'), body('[1]', ', "id": "\\x"'),
      body('[1]', ', "x": tru'), body('[1, 2', ''),
    ];
    for (const text of cases) {
      let expected = '';
      try {
        JSON.parse(text);
      } catch (error) {
        expected = `the request body is not valid JSON: ${(error as Error).message}`;
      }
      expect(expected, text).not.toBe('');
      expect(refusal(text), text).toEqual({ code: 'WEIR_INVALID_REQUEST', message: expected });
    }
  });

  it('matches each input to its own numbers, lifted or not', () => {
    const text = `{"id":"r1","inputs":[{"name":"a","datatype":"FP32","shape":[2],"data":[1.5,2]},{"name":"b","datatype":"BYTES","shape":[1],"data":["s"]},7,{"name":"c","datatype":"INT32","shape":[3],"data":[[4],[5],[6]]}],"outputs":[{"name":"y"}]}`;
    const parsed = parseV2Json(bytes(text));
    expect(Array.from(parsed.liftedData(0) ?? [])).toEqual([1.5, 2]);
    expect(parsed.liftedData(1)).toBeUndefined();
    expect(parsed.liftedData(2)).toBeUndefined();
    expect(Array.from(parsed.liftedData(3) ?? [])).toEqual([4, 5, 6]);
    expect(parsed.liftedData(4)).toBeUndefined();
  });

  it('holds bodies with more numbers than its scratch space', () => {
    const values = Array.from({ length: 50_000 }, (_, i) => i / 8);
    expect(decodedNumbers(body(JSON.stringify(values)))).toEqual(values);
  });

  it('copies the numbers out: decoding another body leaves the first request as it was', () => {
    const first = decodeInferRequest(bytes(body('[1,2,3]')), undefined, 'm').request;
    decodeInferRequest(bytes(body('[4,5,6]')), undefined, 'm');
    expect(Array.from(first.inputs[0]?.data as Float64Array)).toEqual([1, 2, 3]);
  });

  it('shares a repeated skeleton only frozen, and never hands out its arrays', () => {
    const text = body('[1]');
    const first = decodeInferRequest(bytes(text), undefined, 'm').request;
    expect(Object.isFrozen(parseV2Json(bytes(text)).json)).toBe(true);
    (first.inputs[0]?.shape as number[]).push(99);
    expect(decodeInferRequest(bytes(text), undefined, 'm').request.inputs[0]?.shape).toEqual([1]);
  });

  it('lifts the request id, so that requests differing only in their ids share a skeleton', () => {
    const withId = (id: string, data: string) => `{"id":${id},"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":${data}}]}`;
    const ids = ['"r-1"', '"r-2"', '""', '"snow ☃ and 𝄞"', '"a\\"b"', '"tab\\tted"', '"\\u00e9"'];
    for (const id of ids) {
      const text = withId(id, '[1.5]');
      expect(decodeInferRequest(bytes(text), undefined, 'm').request.id, text).toBe(JSON.parse(text).id);
    }
    expect(parseV2Json(bytes(withId('"r-1"', '[1]'))).json).toBe(parseV2Json(bytes(withId('"r-2"', '[2]'))).json);
    // JSON.parse keeps the last of repeated keys; an id that is not a string is refused as before.
    expect(decodeInferRequest(bytes(`{"id":"first","id":"last","inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[1]}]}`), undefined, 'm').request.id).toBe('last');
    expect(refusal(withId('7', '[1]'))).toEqual({ code: 'WEIR_INVALID_REQUEST', message: 'id: expected a string' });
  });

  it('caches the JSON header of a binary request as a skeleton, though it has no numbers to lift', () => {
    const header = (id: string) => `{"id":"${id}","inputs":[{"name":"x","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}`;
    expect(parseV2Json(bytes(header('a')), true).json).toBe(parseV2Json(bytes(header('b')), true).json);
    expect(parseV2Json(bytes(header('a'))).shared).toBe(false); // a JSON body with nothing to lift is not kept
    const binaryBody = (id: string, values: number[]) => {
      const json = Buffer.from(header(id));
      return { body: new Uint8Array(Buffer.concat([json, Buffer.from(Float32Array.from(values).buffer)])), headerLength: json.byteLength };
    };
    const decoded = [binaryBody('a', [1, 2]), binaryBody('b', [3, 4])].map(({ body, headerLength }) => decodeInferRequest(body, headerLength, 'm').request);
    expect(decoded.map((request) => [request.id, Array.from(request.inputs[0]?.data as Float32Array)])).toEqual([
      ['a', [1, 2]],
      ['b', [3, 4]],
    ]);
  });

  it('keeps each skeleton under the right number when the addon starts numbering again', () => {
    // The addon numbers 256 skeletons, then starts again from 0: each must still decode as itself.
    const named = (n: number) => `{"inputs":[{"name":"x${n}","datatype":"FP64","shape":[1],"data":[${n}]}]}`;
    for (let round = 0; round < 2; round++) {
      for (let n = 0; n < 300; n++) {
        const { request } = decodeInferRequest(bytes(named(n)), undefined, 'm');
        expect([request.inputs[0]?.name, Array.from(request.inputs[0]?.data as Float64Array)]).toEqual([`x${n}`, [n]]);
      }
    }
  });

  it('checks a repeated skeleton once, yet decodes every body of it to its own values, id and outputs', () => {
    const text = (id: string, data: string) => body(data, `,"id":"${id}","outputs":[{"name":"y","parameters":{"binary_data":true}}]`);
    const first = decodeInferRequest(bytes(text('a', '[1]')), undefined, 'm');
    const again = decodeInferRequest(bytes(text('a', '[2]')), undefined, 'm');
    const other = decodeInferRequest(bytes(text('b', '[3]')), undefined, 'm', '2');
    expect([first, again, other].map(({ request }) => [request.id, request.version, request.outputs, Array.from(request.inputs[0]?.data as Float64Array)])).toEqual([
      ['a', undefined, ['y'], [1]],
      ['a', undefined, ['y'], [2]],
      ['b', '2', ['y'], [3]],
    ]);
    expect(again.binaryOutputs).toEqual(new Set(['y']));
  });

  it('hands a worker-decoded request its tensors in buffers of their own, so moving them takes nothing from the next', () => {
    const small = (n: number) => `{"name":"s${n}","datatype":"FP32","shape":[2],"data":[${n},${n + 1}]}`;
    const decodeAndMove = (n: number) => {
      const { output, transfer } = decodeV2Json({ body: bytes(`{"inputs":[${small(n)},${small(n + 10)}]}`), model: 'm' });
      for (const tensor of output.request.inputs) expect(tensor.data.byteLength).toBe(tensor.data.buffer.byteLength);
      return structuredClone(output, { transfer }).request.inputs.map((tensor) => Array.from(tensor.data as Float32Array));
    };
    expect(decodeAndMove(1)).toEqual([[1, 2], [11, 12]]);
    expect(decodeAndMove(2)).toEqual([[2, 3], [12, 13]]);
  });
});

describe('fromJsonNumbers', () => {
  const values = [0, -0, 1, -1, 1.5, -2.5, 127, 128, 255, 256, -129, 65535, 65536, 2 ** 31, 2 ** 32 + 3, 2 ** 40, 1e-8, 3.4e38, 1e39];
  for (const datatype of Object.keys(DATATYPES) as Array<keyof typeof DATATYPES>) {
    it(`converts to ${datatype} exactly as fromJsonData does, refusals included`, () => {
      const outcome = (convert: () => unknown) => {
        try {
          return { ok: Array.from(convert() as ArrayLike<unknown>) };
        } catch (error) {
          return { error: (error as Error).message };
        }
      };
      const lifted = outcome(() => fromJsonNumbers(datatype, Float64Array.from(values), 'inputs[0].data'));
      expect(lifted).toEqual(outcome(() => fromJsonData(datatype, values, 'inputs[0].data')));
    });
  }
});
