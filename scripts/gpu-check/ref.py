# Independent reference: Python's onnxruntime (CPU and CUDA providers) on the
# inputs check.mjs wrote, compared with what Weir's addon answered.
import json, os, sys
import numpy as np
import onnxruntime as ort

out = os.environ.get('OUT', '/tmp/gpu-out')
manifest = json.load(open(os.path.join(out, 'manifest.json')))
dt = {'FP32': np.float32, 'INT64': np.int64}
res = {'python_ort': ort.__version__, 'providers': ort.get_available_providers(), 'models': {}}
def read(name, datatype, shape):
    return np.fromfile(os.path.join(out, 'tensors', name), dtype=dt[datatype]).reshape(shape)
for m in manifest:
    feeds = {i['name']: read(i['file'], i['datatype'], i['shape']) for i in m['inputs']}
    entry = res['models'][m['model']] = {}
    for ep in ['CPUExecutionProvider', 'CUDAExecutionProvider']:
        try:
            s = ort.InferenceSession(m['path'], providers=[ep])
            got = s.run([o['name'] for o in m['outputs']], feeds)
            entry[ep] = {
                'session_providers': s.get_providers(),
                'max_abs_diff_vs_weir_cuda': max(float(np.max(np.abs(g.astype(np.float64) - read(o['cuda'], o['datatype'], o['shape']).astype(np.float64)))) if g.size else 0.0 for g, o in zip(got, m['outputs'])),
                'max_abs_diff_vs_weir_cpu': max(float(np.max(np.abs(g.astype(np.float64) - read(o['cpu'], o['datatype'], o['shape']).astype(np.float64)))) if g.size else 0.0 for g, o in zip(got, m['outputs'])),
            }
        except Exception as e:
            entry[ep] = {'error': str(e)[:500]}
json.dump(res, open(os.path.join(out, 'python-ref.json'), 'w'), indent=1)
print(json.dumps(res))
