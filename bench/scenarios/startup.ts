/**
 * Start-up: from spawning the built proxy to its readiness line (every listener bound), and its
 * memory once ready. A bare `node -e 0` shows what the runtime alone takes on this machine.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ProxyProcess } from '../../test/support/proxy-process.js';
import { sleep, type Context } from '../context.js';
import { MB, residentBytes } from '../process-stats.js';
import type { Row } from '../results.js';
import { median } from '../stats.js';

async function bareNodeMs(): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  return performance.now() - started;
}

/** Starts and stops the proxy a few times; runs before the main proxy is started (same ports). */
export async function startup(
  context: Pick<Context, 'peers' | 'settings' | 'progress'>,
): Promise<Row[]> {
  const runs = context.settings.startups;
  context.progress(`start-up: ${runs} starts`);
  const startMs: number[] = [];
  const rss: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    nodeMs.push(await bareNodeMs());
    const started = performance.now();
    const proxy = await ProxyProcess.start({
      dir: context.peers.dir,
      config: context.peers.proxyConfig(),
    });
    try {
      await proxy.ready();
      startMs.push(performance.now() - started);
      await sleep(1_000);
      rss.push(residentBytes(proxy.child.pid ?? 0));
    } finally {
      await proxy.stop();
    }
  }
  return [
    {
      id: 'startup_ms',
      label: 'start-up to ready',
      unit: 'ms',
      proxy: median(startMs),
      note: `median of ${runs}; a bare "node -e 0" takes ${median(nodeMs).toFixed(0)} ms here`,
    },
    { id: 'startup_idle_rss', label: 'idle RSS after start', unit: 'MB', proxy: median(rss) / MB },
  ];
}
