/**
 * CPU time of a process group from /proc, for the HTTP benchmark.
 *
 * Servers are started detached (their own process group, pgid = pid), so the
 * group's CPU time covers the server, all its threads (worker threads, ONNX
 * Runtime's) and any helper processes it starts. /proc/<pid>/stat counts in
 * clock ticks (`getconf CLK_TCK`, usually 100): 10 ms resolution, so measure
 * over seconds, not milliseconds.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second for /proc's utime and stime. */
export function clockTicksPerSecond(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticks = NaN;
    }
    if (!Number.isFinite(ticks) || ticks <= 0) ticks = 100;
  }
  return ticks;
}

interface ProcStat {
  pid: number;
  pgrp: number;
  /** utime + stime, in clock ticks (every thread of the process, live or exited). */
  cpuTicks: number;
}

/** `/proc/<pid>/stat`, or a thread's `/proc/<pid>/task/<tid>/stat`. */
function readStat(pid: number, path = `/proc/${pid}/stat`): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined; // exited meanwhile
  }
  // Field 2 (comm) is parenthesised and may hold spaces or ')': split after the last ')'.
  // What follows starts at field 3 (state), so field n is at index n - 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, pgrp: Number(fields[2]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

/** CPU seconds (user + system) used so far by one thread of process `pid` (its main thread: `tid` = pid). */
export function threadCpuSeconds(tid: number, pid = process.pid): number {
  return (readStat(pid, `/proc/${pid}/task/${tid}/stat`)?.cpuTicks ?? 0) / clockTicksPerSecond();
}

/** CPU seconds (user + system) used so far by every live process in process group `pgid`. */
export function processGroupCpuSeconds(pgid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid) total += stat.cpuTicks;
  }
  return total / clockTicksPerSecond();
}

/** One CPU's line of /proc/stat, in clock ticks. */
export interface CoreTicks {
  busy: number;
  idle: number;
  steal: number;
}

/** Ticks spent so far by CPU `cpu` (busy: user, nice, system, irq, softirq; idle: idle, iowait). */
export function coreTicks(cpu: number): CoreTicks | null {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
  return { busy: user! + nice! + system! + irq! + softirq!, idle: idle! + iowait!, steal: steal ?? 0 };
}

/**
 * How a core's time went over `wallS` seconds, as fractions of that time.
 * `unaccounted`: time the kernel charged to nothing, i.e. this virtual CPU was
 * not running (the host took it) without reporting steal time.
 */
export function coreShare(before: CoreTicks | null, after: CoreTicks | null, wallS: number) {
  if (before === null || after === null || wallS <= 0) return null;
  const ticks = wallS * clockTicksPerSecond();
  const busy = (after.busy - before.busy) / ticks;
  const idle = (after.idle - before.idle) / ticks;
  const steal = (after.steal - before.steal) / ticks;
  const r = (n: number) => Number(n.toFixed(2));
  return { busy: r(busy), idle: r(idle), steal: r(steal), unaccounted: r(Math.max(0, 1 - busy - idle - steal)) };
}
