/**
 * A five-person friend group of real `p2pbak daemon` processes, set up and used the way people type
 * it, on whatever network this process runs in. test/e2e/lossy-network.spec.ts runs it inside a
 * private network namespace whose loopback drops and resets packets (iptables rules it sets first).
 *
 *   node --import tsx --import ./src/util/polyfill.ts test/helpers/lossy-group.ts WORKDIR DEADLINE_MS
 *
 * Flow: `init` ×5, `daemon` ×5 (default flags but the listen address), `group create`,
 * `group invite` / `join` ×4, `contribute` ×4, `backup` of a ~45 MB tree (random and text), `status`,
 * `restore latest` to a new folder. Every command runs once, as a person would: a failure is a
 * failure of the tool, not of the test. Progress goes to stderr; the last stdout line is a
 * {@link LossyResult} as JSON. Daemons run with DEBUG=p2pbak:*retry* style logging to their own log
 * files, from which the retries they made are counted.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createCipheriv } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compareTrees } from './tree-compare.js'

const BIN = fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))
const NAMES = ['ann', 'bob', 'cid', 'dee', 'eve'] as const
/** a cheap Argon2id for the key files (as test/helpers/cli.ts TEST_ENV; not loaded here to keep this runner light) */
const TEST_ENV = { P2PBAK_KDF: '1,8388608', P2PBAK_INSECURE_TEST_KDF: '1' }

/** Total size of the regular files under `dir` (0 if it does not exist). */
function bytesUnder (dir: string): number {
  if (!existsSync(dir)) return 0
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) n += bytesUnder(p)
    else if (e.isFile()) n += statSync(p).size
  }
  return n
}

export interface LossyStep { step: string, ms: number, code: number | null, stderr?: string }
export interface LossyResult {
  ok: boolean
  failed?: string
  steps: LossyStep[]
  sourceBytes: number
  /** bytes of ann's shares each friend holds after the backup */
  heldByFriends: number[]
  /** bytes of shares left on ann's own disk after the backup */
  leftLocal: number
  /** differences between the source and the restored tree (empty: byte-exact) */
  differences: string[]
  /** "retrying" lines in the daemons' logs: transient failures that were retried */
  retriesLogged: number
  totalMs: number
}

interface Person { name: string, home: string, daemon?: ChildProcess, log: string }

const [workdir, deadlineArg] = process.argv.slice(2)
if (workdir === undefined) throw new Error('usage: lossy-group.ts WORKDIR [DEADLINE_MS]')
const deadline = Date.now() + Number(deadlineArg ?? 400_000)
const started = Date.now()
const steps: LossyStep[] = []

function note (text: string): void {
  process.stderr.write(`[lossy ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}\n`)
}

function envFor (p: Person): NodeJS.ProcessEnv {
  return { ...process.env, ...TEST_ENV, P2PBAK_HOME: p.home, P2PBAK_PASSPHRASE: 'pw' }
}

class StepFailed extends Error {}

/** One CLI command as a person types it; throws StepFailed unless it exits 0. */
async function cli (p: Person, ...argv: string[]): Promise<string> {
  const t0 = Date.now()
  const child = spawn(process.execPath, [BIN, ...argv], { env: envFor(p), stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  const killer = setTimeout(() => child.kill('SIGKILL'), Math.max(1000, deadline - Date.now()))
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  }).finally(() => clearTimeout(killer))
  const stderr = Buffer.concat(err).toString()
  const step: LossyStep = { step: `${p.name}: p2pbak ${argv.map(a => a.length > 40 ? `${a.slice(0, 12)}…` : a).join(' ')}`, ms: Date.now() - t0, code }
  if (code !== 0) step.stderr = stderr.slice(-2000)
  steps.push(step)
  note(`${step.step} → exit ${String(code)} in ${step.ms} ms${code !== 0 ? `\n${stderr}` : ''}`)
  if (code !== 0) throw new StepFailed(`${step.step} exited ${String(code)}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)
  return Buffer.concat(out).toString()
}

async function waitFor (what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Math.min(deadline, Date.now() + timeoutMs)
  while (!(await fn())) {
    if (Date.now() > until) throw new StepFailed(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

async function startDaemon (p: Person): Promise<void> {
  rmSync(join(p.home, 'node.json'), { force: true })
  const fd = openSync(p.log, 'a')
  // default flags as a user has them, except the listen address (the namespace has only lo)
  p.daemon = spawn(process.execPath, [BIN, 'daemon', '--listen', '/ip4/127.0.0.1/tcp/0'], {
    env: { ...envFor(p), DEBUG: 'p2pbak:*' }, stdio: ['ignore', fd, fd]
  })
  closeSync(fd)
  await waitFor(`${p.name}'s daemon`, () => existsSync(join(p.home, 'node.json')) && existsSync(join(p.home, 'daemon.sock')), 30_000)
  note(`${p.name}: daemon up`)
}

async function stopDaemon (p: Person): Promise<void> {
  const d = p.daemon
  if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
  const exited = new Promise(resolve => d.once('exit', resolve))
  d.kill('SIGINT')
  const timer = setTimeout(() => d.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

/** Deterministic incompressible bytes (AES-256-CTR of zeros under a key from `seed`). */
function noise (seed: number, bytes: number): Buffer {
  const key = Buffer.alloc(32, seed)
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes))
}

/** ~45 MB: a few large random files, a hundred small ones, and text. Returns its size. */
function makeTree (root: string): number {
  let total = 0
  const put = (rel: string, data: Buffer | string): void => {
    const path = join(root, rel)
    mkdirSync(join(path, '..'), { recursive: true })
    writeFileSync(path, data)
    total += Buffer.byteLength(data)
  }
  for (let i = 0; i < 4; i++) put(`photos/IMG_${1000 + i}.raw`, noise(i + 1, 9 * 1024 * 1024 + i * 4099))
  for (let i = 0; i < 100; i++) put(`music/track-${i}.bin`, noise(100 + i, 20_000 + i * 517))
  for (let i = 0; i < 40; i++) put(`docs/notes-${i}.txt`, `day ${i}: met friends, backed things up, nothing was lost\n`.repeat(2000 + i * 50))
  put('docs/empty.txt', '')
  return total
}

function countRetries (people: readonly Person[]): number {
  let n = 0
  for (const p of people) {
    if (!existsSync(p.log)) continue
    n += readFileSync(p.log, 'utf8').split('\n').filter(l => l.includes('retrying in')).length
  }
  return n
}

async function main (): Promise<LossyResult> {
  const people: Person[] = NAMES.map(name => ({ name, home: join(workdir as string, name), log: join(workdir as string, `${name}.daemon.log`) }))
  const [ann, ...friends] = people as [Person, ...Person[]]
  const src = join(workdir as string, 'src')
  const result: LossyResult = { ok: false, steps, sourceBytes: 0, heldByFriends: [], leftLocal: -1, differences: [], retriesLogged: 0, totalMs: 0 }
  try {
    result.sourceBytes = makeTree(src)
    note(`source tree: ${result.sourceBytes} bytes`)
    // five people, each at their own machine
    await Promise.all(people.map(async p => await cli(p, 'init')))
    await Promise.all(people.map(startDaemon))
    await cli(ann, 'group', 'create', 'lossy friends')
    for (const f of friends) {
      const code = (JSON.parse(await cli(ann, 'group', 'invite', '--json')) as { invite: string }).invite
      await cli(f, 'join', code)
      await cli(f, 'contribute', '1G')
    }
    // no wait: the backup right after the last join goes to friends (issue 9.1)
    await cli(ann, 'backup', src)
    // a pack whose holder the lossy link cut off for good during the backup stays on ann's disk (the
    // summary says so) and the daemon's rounds move it to friends: wait for that, with a deadline
    const localAt = Date.now()
    for (let left = bytesUnder(join(ann.home, 'store', 'shares')); left > 0 && Date.now() - localAt < 180_000; left = bytesUnder(join(ann.home, 'store', 'shares'))) {
      await new Promise(resolve => setTimeout(resolve, 500)) // polling the store, with the deadline above
    }
    result.leftLocal = bytesUnder(join(ann.home, 'store', 'shares'))
    note(`shares on ann's disk after the backup: gone after ${Math.round((Date.now() - localAt) / 1000)} s`)
    result.heldByFriends = friends.map(f => bytesUnder(join(f.home, 'held')))
    await cli(ann, 'status')
    const target = join(workdir as string, 'restored')
    await cli(ann, 'restore', 'latest', '--target', target)
    result.differences = compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n })
    result.ok = result.differences.length === 0
    if (!result.ok) result.failed = `the restored tree differs: ${result.differences.slice(0, 5).join('; ')}`
  } catch (err: unknown) {
    if (!(err instanceof StepFailed)) throw err
    result.failed = err.message
  } finally {
    await Promise.all(people.map(stopDaemon))
    result.retriesLogged = countRetries(people)
    result.totalMs = Date.now() - started
  }
  return result
}

main().then((r) => {
  process.stdout.write(`${JSON.stringify(r)}\n`)
  process.exit(0)
}, (err: unknown) => {
  process.stderr.write(`lossy-group: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(2)
})
