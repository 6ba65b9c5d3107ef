/**
 * Work besides inference that a front end runs in the inference workers to
 * keep it off the main thread (decoding a large JSON body, say). A job is a
 * function exported by a module of the front end's own: it takes
 * structured-clonable input and names the buffers of its output, which move
 * back instead of being copied. The pool and the workers know jobs only by
 * module and export name, so they depend on no front end.
 */

/** What a job function returns. */
export interface JobResult<T> {
  output: T;
  /** Buffers of `output` to move back to the main thread. */
  transfer: ArrayBuffer[];
}

/** A job: where its function is. The type parameters are its input and output. */
export interface Job<I, O> {
  /** The module's URL (import.meta.url of the module that exports the function). */
  readonly module: string;
  readonly name: string;
  /** The function itself, for when the workers' queue of jobs is full: it then runs on the calling thread. */
  readonly run: (input: I) => JobResult<O>;
}

/** Names `module`'s export `name` (which is `run`) as a job; the worker imports the module on its first use. */
export function defineJob<I, O>(module: string, name: string, run: (input: I) => JobResult<O>): Job<I, O> {
  return { module, name, run };
}

const modules = new Map<string, Promise<Record<string, unknown>>>();

/** Runs a job in this thread (the worker's side). */
export async function runJobHere(module: string, name: string, input: unknown): Promise<JobResult<unknown>> {
  let loading = modules.get(module);
  if (!loading) modules.set(module, (loading = import(module) as Promise<Record<string, unknown>>));
  const job = (await loading)[name];
  if (typeof job !== 'function') throw new Error(`${module} exports no job named ${name}`);
  return (job as (input: unknown) => JobResult<unknown>)(input);
}
