/**
 * Preloaded into the proxy (`NODE_OPTIONS=--import=...`) by `npm run bench -- --profile DIR`:
 * Node 20 refuses `--cpu-prof` in NODE_OPTIONS, so this does the same through the inspector and
 * writes a `.cpuprofile` (Chrome DevTools, speedscope) into `BENCH_CPU_PROFILE_DIR` on exit.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROFILE_DIR;
if (dir !== undefined) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // Same-thread inspector calls complete synchronously, which an exit handler needs.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      writeFileSync(join(dir, `proxy-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
