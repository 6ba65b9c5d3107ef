// Builds the native addon (native/) with cmake-js. Run by `npm ci` as the
// package's install script, and by `npm run build`. WEIR_SANITIZE (e.g.
// address,undefined) builds it with those sanitizers instead.
//
// ONNX Runtime's headers come from ORT_INCLUDE_DIR, else the system's
// /usr/include/onnxruntime, else Debian's libonnxruntime-dev fetched into
// native/.deps. They must not be newer than the runtime onnxruntime-node ships.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function hasHeaders(dir) {
  return Boolean(dir) && existsSync(join(dir, 'onnxruntime_c_api.h'));
}

function findOrFetchHeaders() {
  const fromEnv = process.env.ORT_INCLUDE_DIR;
  if (fromEnv) {
    if (!hasHeaders(fromEnv)) throw new Error(`ORT_INCLUDE_DIR=${fromEnv} has no onnxruntime_c_api.h`);
    return fromEnv;
  }
  if (hasHeaders('/usr/include/onnxruntime')) return '/usr/include/onnxruntime';
  console.log('weir: fetching ONNX Runtime headers (Debian libonnxruntime-dev) into native/.deps');
  const script = join(root, 'scripts', 'fetch-ort-headers.sh');
  return execFileSync('bash', [script, join(root, 'native', '.deps')], { encoding: 'utf8' }).trim();
}

function checkHeadersNotNewerThanRuntime(includeDir) {
  const header = readFileSync(join(includeDir, 'onnxruntime_c_api.h'), 'utf8');
  const apiVersion = Number(/#define ORT_API_VERSION (\d+)/.exec(header)?.[1]);
  const runtimeVersion = require('onnxruntime-node/package.json').version;
  const runtimeMinor = Number(runtimeVersion.split('.')[1]);
  if (!(apiVersion <= runtimeMinor)) {
    throw new Error(
      `ONNX Runtime headers in ${includeDir} declare C API ${apiVersion}, newer than ` +
        `onnxruntime-node ${runtimeVersion}; use headers of 1.${runtimeMinor} or older`,
    );
  }
}

const includeDir = findOrFetchHeaders();
checkHeadersNotNewerThanRuntime(includeDir);
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const cmake = (command, ...args) =>
  execFileSync(process.execPath, [cmakeJs, command, '--directory', join(root, 'native'), ...args], { stdio: 'inherit', cwd: root });
// Configured every time (`compile` skips that once a build folder exists), so that a change of
// WEIR_SANITIZE takes effect; it is passed as OFF for a normal build, or CMake would keep the last one.
cmake('configure', `--CDORT_INCLUDE_DIR=${includeDir}`, `--CDWEIR_SANITIZE=${process.env.WEIR_SANITIZE || 'OFF'}`);
cmake('build');
