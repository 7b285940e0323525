// p2pbak daemons for the group benchmark: one per home, started and stopped as a user would
// (`p2pbak daemon`, SIGINT), each in its own process group so that nothing outlives the harness.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { running } from './proc.mjs';
import { REPO_ROOT } from './setup.mjs';

export const P2PBAK_BIN = join(REPO_ROOT, 'bin', 'p2pbak.js');
const STDERR_CAP = 64 << 10;

export const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/** Poll fn (sync or async) every intervalMs until it returns true; throws after timeoutMs. */
export async function waitFor(what, fn, timeoutMs, intervalMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Sum of the sizes of the regular files below dir (0 if it does not exist). */
export function fileBytesUnder(dir) {
  if (!existsSync(dir)) return 0;
  let total = 0;
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop();
    let entries;
    try { entries = readdirSync(d, { withFileTypes: true }); } catch { continue; }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) { try { total += statSync(p).size; } catch { /* removed meanwhile */ } }
    }
  }
  return total;
}

/** The daemon's stdout: ignored, or HOME/../<name>.stdout when BENCH_DAEMON_STDOUT=1 (e.g. node --trace-gc). */
function stdoutFd(node) {
  if (process.env.BENCH_DAEMON_STDOUT !== '1') return 'ignore';
  return openSync(join(node.home, '..', `${node.name}.stdout`), 'a');
}

/**
 * Start `p2pbak daemon` for node = { name, home, env } and wait until it has written HOME/node.json
 * and HOME/daemon.sock. Sets node.child, node.pid, node.exit (a promise of { code, signal }) and
 * node.stderr (its last 64 KiB of stderr, for failure reports). nodeArgs go to node itself, before the
 * script (profiling: BENCH_DAEMON_NODE_ARGS in group.mjs).
 */
export async function startDaemon(node, { refreshMs = 1000, timeoutMs = 60_000, nodeArgs = [] } = {}) {
  rmSync(join(node.home, 'node.json'), { force: true });
  const child = spawn(process.execPath, [...nodeArgs, P2PBAK_BIN, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0',
    '--refresh', String(refreshMs)], { env: node.env, cwd: REPO_ROOT, detached: true, stdio: ['ignore', stdoutFd(node), 'pipe'] });
  node.child = child;
  node.pid = child.pid;
  node.stderr = '';
  node.exited = false;
  if (child.pid !== undefined) running.add(child.pid);
  child.stderr.on('data', (c) => {
    node.stderr += c.toString('utf8');
    if (node.stderr.length > STDERR_CAP) node.stderr = node.stderr.slice(-STDERR_CAP);
  });
  node.exit = new Promise((res) => {
    child.on('error', (e) => { node.exited = true; node.stderr += `\nspawn error: ${String(e)}`; res({ code: null, signal: null }); });
    child.on('exit', (code, signal) => {
      node.exited = true;
      if (child.pid !== undefined) running.delete(child.pid);
      res({ code, signal });
    });
  });
  await waitFor(`${node.name}'s daemon to write node.json and daemon.sock`, () => {
    if (node.exited) throw new Error(`${node.name}'s daemon exited early:\n${node.stderr.trim()}`);
    return existsSync(join(node.home, 'node.json')) && existsSync(join(node.home, 'daemon.sock'));
  }, timeoutMs, 100);
}

/**
 * Stop a daemon as a user does (SIGINT), wait for it to exit; after graceMs send SIGKILL to its
 * whole process group. Returns { code, signal, seconds, killed }.
 */
export async function stopDaemon(node, graceMs = 20_000) {
  if (!node.child || node.exited) return { code: null, signal: null, seconds: 0, killed: false, alreadyGone: true };
  const t0 = Date.now();
  node.stopRequested = true;
  try { process.kill(node.pid, 'SIGINT'); } catch { /* gone */ }
  let timer;
  const timeout = new Promise((res) => { timer = setTimeout(() => res(null), graceMs); });
  let r = await Promise.race([node.exit, timeout]);
  clearTimeout(timer);
  let killed = false;
  if (r === null) {
    killed = true;
    try { process.kill(-node.pid, 'SIGKILL'); } catch { /* gone */ }
    r = await node.exit;
  }
  // anything the daemon may have started in its group goes too
  try { process.kill(-node.pid, 'SIGKILL'); } catch { /* none left */ }
  return { ...r, seconds: (Date.now() - t0) / 1000, killed };
}
