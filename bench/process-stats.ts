/** What a process costs, read from /proc (Linux): resident memory and CPU time. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond =
        Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Resident set size in bytes (VmRSS). */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/** User plus system CPU time consumed so far, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces and parentheses; the fields after its last ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** CPU use of `pid` over `ms` milliseconds, as a percentage of one core. */
export async function cpuPercentOver(pid: number, ms: number): Promise<number> {
  const before = cpuSeconds(pid);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const elapsed = (performance.now() - started) / 1000;
  return ((cpuSeconds(pid) - before) / elapsed) * 100;
}

/** Throughput and memory are reported in decimal megabytes. */
export const MB = 1_000_000;

/** Cumulative CPU seconds of something: this process, another one, a server's processes. */
export type CpuMeter = () => number;

/** This process (the benchmark's clients), all threads. */
export const ownCpu: CpuMeter = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

export function processCpu(pid: number): CpuMeter {
  return () => cpuSeconds(pid);
}

/**
 * A server made of a master and the processes it starts (Dovecot: login, imap, pop3, auth...).
 * Only processes alive at both readings count, so read before closing the sessions measured.
 */
export function processTreeCpu(rootPid: number): CpuMeter {
  return () => {
    let total = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const pid = Number(entry);
        if (pid !== rootPid && Number(fields[1]) !== rootPid) continue;
        total += (Number(fields[11]) + Number(fields[12])) / clockTicks();
      } catch {
        // exited meanwhile
      }
    }
    return total;
  };
}

/** The process whose command line contains `text`, if there is one. */
export function findProcess(text: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(text))
        return Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return undefined;
}
