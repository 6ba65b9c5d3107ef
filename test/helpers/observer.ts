/**
 * A CoreObserver that records what the core reports, for tests to check which
 * requests failed how and how many batches ran.
 */
import type { CoreObserver } from '../../dist/core/core.js';

export interface RecordingObserver extends CoreObserver {
  /** Each request answered: its model and failure code (null: answered). */
  readonly failures: Array<[string, string | null]>;
  /** Each batch run: its model. */
  readonly batches: string[];
}

export function recordingObserver(): RecordingObserver {
  const failures: Array<[string, string | null]> = [];
  const batches: string[] = [];
  return {
    failures,
    batches,
    requestFinished: (model, _version, _seconds, failure) => void failures.push([model, failure]),
    batchRan: (model) => void batches.push(model),
    jobRan: () => {},
  };
}
