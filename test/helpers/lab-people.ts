/**
 * People with real daemons in the NAT lab (nat-lab.ts): their CLI, daemons started inside a host's
 * namespace and stopped with SIGINT (each must exit 0 within 15 s), `status --json`, and a tree of
 * incompressible data to back up. Shared by the e2e specs of issue 12 (nat-traversal, nat-upnp).
 */
import assert from 'node:assert/strict'
import { createCipheriv } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { runCli, TEST_ENV, type CliResult } from './cli.js'
import { bytesUnder, waitFor } from './daemons.js'
import { compareTrees } from './tree-compare.js'
import type { NatLab } from './nat-lab.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BIN = join(ROOT, 'bin/p2pbak.js')

export interface Person {
  name: string, host: string, home: string, log: string, daemon?: ChildProcess, peerId?: string
  /** the daemon's options. @default ['--refresh', '2000'] */
  daemonArgs?: string[]
}
export interface Reach { how: string, via?: string, addr?: string, direction?: string }
export interface StatusJson {
  reachability: { role: string, reachable: boolean, how: string, addrs: string[], relays: string[], mapped: string[], carried: Record<string, { bytes: number, connections: number }> }
  peers: Array<{ peerId: string, name: string, online: boolean, reach: Reach | null, directPath: { state: string, via?: string, failures: number } | null }>
}

/** A tree of about `bytes` incompressible bytes (AES-CTR of zeros) in a few files and a little text; returns its size. */
export function makeNoiseTree (root: string, bytes: number): number {
  mkdirSync(join(root, 'docs'), { recursive: true })
  let total = 0
  for (let i = 0; i < 4; i++) {
    const data = createCipheriv('aes-256-ctr', Buffer.alloc(32, i + 1), Buffer.alloc(16)).update(Buffer.alloc(Math.floor(bytes / 4)))
    writeFileSync(join(root, `file-${i}.bin`), data)
    total += data.byteLength
  }
  const text = 'a friend behind a router\n'.repeat(1000)
  writeFileSync(join(root, 'docs', 'notes.txt'), text)
  return total + text.length
}

export function tail (file: string, chars = 4000): string { return existsSync(file) ? readFileSync(file, 'utf8').slice(-chars) : '' }

export async function cli (p: Person, ...argv: string[]): Promise<CliResult> {
  const r = await runCli(argv, { P2PBAK_HOME: p.home, P2PBAK_PASSPHRASE: 'pw' })
  if (r.code !== 0) throw new Error(`${p.name}: p2pbak ${argv.join(' ')} exited ${r.code}: ${r.stderr}\n--- ${p.name}'s daemon log (end) ---\n${tail(p.log)}`)
  return r
}

/** Starts a person's daemon in its lab host (listening on 0.0.0.0:4737, refresh every 2 s unless `daemonArgs` say otherwise); logs with DEBUG=$NAT_DEBUG (default `p2pbak:*`). */
export async function startDaemon (lab: NatLab, p: Person): Promise<void> {
  rmSync(join(p.home, 'node.json'), { force: true })
  const fd = openSync(p.log, 'a')
  p.daemon = lab.spawnIn(p.host, [process.execPath, BIN, 'daemon', '--listen', '/ip4/0.0.0.0/tcp/4737', ...(p.daemonArgs ?? ['--refresh', '2000'])], {
    env: { ...process.env, ...TEST_ENV, P2PBAK_HOME: p.home, P2PBAK_PASSPHRASE: 'pw', DEBUG: process.env.NAT_DEBUG ?? 'p2pbak:*' }, stdio: ['ignore', fd, fd]
  })
  closeSync(fd)
  await waitFor(`${p.name}'s daemon`, () => existsSync(join(p.home, 'node.json')) && existsSync(join(p.home, 'daemon.sock')), 60_000)
  p.peerId = (JSON.parse(readFileSync(join(p.home, 'node.json'), 'utf8')) as { peerId: string }).peerId
}

/** SIGINT; the daemon must exit 0 within 15 s (else it is killed and the test fails). */
export async function stopDaemon (p: Person): Promise<void> {
  const d = p.daemon
  if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
  const exited = new Promise(resolve => d.once('exit', resolve))
  d.kill('SIGINT')
  const timer = setTimeout(() => d.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
  assert.equal(d.signalCode, null, `${p.name}'s daemon did not stop on SIGINT within 15 s: ${tail(p.log)}`)
  assert.equal(d.exitCode, 0, `${p.name}'s daemon exited ${String(d.exitCode)}: ${tail(p.log)}`)
}

export async function status (p: Person): Promise<StatusJson> { return (await cli(p, 'status', '--json')).json<StatusJson>() }

/** How `s` (one person's status) says another person is reached now. */
export function reachOf (s: StatusJson, who: Person): Reach | null { return s.peers.find(x => x.peerId === who.peerId)?.reach ?? null }

/**
 * `owner` backs up a fresh tree of about `bytes` under `dir/name` and restores it from friends alone:
 * no pack may stay on the owner's disk only (with two friends a stripe is also kept there,
 * placement-and-repair.md), each of `holders` must hold shares, the owner's own copies are deleted
 * before the restore, and the restore must be byte-exact. `snapshots`: how many the owner should list.
 */
export async function backupAndRestoreFromFriends (dir: string, name: string, owner: Person, holders: Person[], bytes: number, snapshots = 1): Promise<{ sourceBytes: number, backupMs: number, restoreMs: number }> {
  const src = join(dir, name)
  const sourceBytes = makeNoiseTree(src, bytes)
  let t = Date.now()
  await cli(owner, 'backup', src)
  const backupMs = Date.now() - t
  const snaps = (await cli(owner, 'status', '--json')).json<{ snapshots: Array<{ localPacks: number, local: boolean }> }>().snapshots
  assert.equal(snaps.length, snapshots, JSON.stringify(snaps))
  assert.ok(snaps.every(x => x.localPacks === 0 && !x.local), `no pack on ${owner.name}'s disk only: ${JSON.stringify(snaps)}`)
  for (const h of holders) assert.ok(bytesUnder(join(h.home, 'held')) > 0, `${h.name} holds shares of ${owner.name}'s backup`)
  rmSync(join(owner.home, 'store', 'shares'), { recursive: true, force: true })
  const target = join(dir, `${name}-restored`)
  t = Date.now()
  await cli(owner, 'restore', 'latest', '--target', target)
  const restoreMs = Date.now() - t
  assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [])
  return { sourceBytes, backupMs, restoreMs }
}
