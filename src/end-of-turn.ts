/**
 * Work deferred to the end of the current event-loop turn, all of it in one
 * setImmediate. A task that schedules another while the queue runs (a
 * batcher that formed a batch schedules the worker pool's dispatch) has it
 * run in the same pass, after the tasks already queued, rather than a whole
 * loop turn later, as a setImmediate scheduled from an immediate would. So
 * what arrived in one turn is batched, and the batches sent, in one pass.
 */
const tasks: Array<() => void> = [];
let armed = false;

/** Runs `task` at the end of this turn, after the tasks already scheduled. */
export function atEndOfTurn(task: () => void): void {
  tasks.push(task);
  if (!armed) {
    armed = true;
    setImmediate(runTasks);
  }
}

function runTasks(): void {
  let next = 0;
  try {
    // Tasks queued meanwhile are appended, and run in this pass.
    while (next < tasks.length) (tasks[next++] as () => void)();
  } finally {
    tasks.splice(0, next);
    armed = false;
    // A task threw: the rest still run, in a turn of their own, and the error surfaces as it would have.
    if (tasks.length > 0) {
      armed = true;
      setImmediate(runTasks);
    }
  }
}
