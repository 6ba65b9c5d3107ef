/**
 * Model repositories for tests: real folders in the OS temp dir, in Triton's
 * layout, holding real ONNX files built from code.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The bundled example repository (models/). */
export const EXAMPLE_REPOSITORY = resolve(__dirname, '..', '..', 'models');

export interface ModelFixture {
  /** An object is written as config.json; a string as config.yaml (or `configFile`). */
  config?: object | string;
  configFile?: string;
  /** Version → model bytes, raw file text, or null for a folder without model.onnx. */
  versions: Record<number, Uint8Array | string | null>;
}

export async function makeRepository(models: Record<string, ModelFixture>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'weir-repo-'));
  for (const [name, fixture] of Object.entries(models)) {
    const dir = join(root, name);
    await mkdir(dir, { recursive: true });
    if (fixture.config !== undefined) {
      const file = fixture.configFile ?? (typeof fixture.config === 'string' ? 'config.yaml' : 'config.json');
      const text = typeof fixture.config === 'string' ? fixture.config : JSON.stringify(fixture.config, null, 2);
      await writeFile(join(dir, file), text);
    }
    for (const [version, bytes] of Object.entries(fixture.versions)) {
      await mkdir(join(dir, version), { recursive: true });
      if (bytes !== null) await writeFile(join(dir, version, 'model.onnx'), bytes);
    }
  }
  return root;
}

export async function removeRepository(root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
}
