/**
 * People with real daemons in the NAT lab (nat-lab.ts): their CLI, daemons started inside a host's
 * namespace and stopped with SIGINT (each must exit 0 within 15 s), `status --json`, and a tree of
 * incompressible data to back up. Shared by the e2e specs of issue 12 (nat-traversal, nat-upnp).
 */
import assert from 'node:assert/strict'
import { createCipheriv } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { runCli, TEST_ENV, type CliResult } from './cli.js'
import { bytesUnder, waitFor } from './daemons.js'
import { compareTrees } from './tree-compare.js'
import { createNatLab, natLabUnavailable, upnpLabUnavailable, type NatLab, type NatLabOptions } from './nat-lab.js'

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

/** One test's lab, its temporary directory and its people (made with `person`). */
export interface LabTest {
  lab: NatLab
  dir: string
  /** a person on a lab host, home and log under `dir`; `daemonArgs` as in {@link Person} */
  person: (name: string, host: string, daemonArgs?: string[]) => Person
  /** the end of every person's daemon log, for a failure message */
  logs: (chars?: number) => string
}

/**
 * The NAT lab for the tests of a `describe` (call it there): says once why this machine cannot build
 * one (`upnp`: with miniupnpd), and after each test stops every person's daemon (each must exit 0),
 * removes the lab and its temporary directory (kept with NAT_KEEP=1). The returned function, called
 * first in a test, skips the test with the reason, or builds the lab.
 */
export function useNatLab (prefix: string, needs: { upnp?: boolean } = {}): (test: Mocha.Context, opts: NatLabOptions) => Promise<LabTest> {
  let why: string | undefined
  let current: { lab?: NatLab, dir: string, people: Person[] } | undefined
  before(async function () {
    this.timeout(60_000)
    why = (await natLabUnavailable()) ?? (needs.upnp === true ? upnpLabUnavailable() : undefined)
  })
  afterEach(async () => {
    const c = current
    current = undefined
    if (c === undefined) return
    await Promise.all(c.people.map(stopDaemon))
    await c.lab?.close()
    if (process.env.NAT_KEEP === undefined) rmSync(c.dir, { recursive: true, force: true })
  })
  return async (test, opts) => {
    if (why !== undefined) { if (test.test !== undefined) test.test.title += ` [skipped: ${why}]`; test.skip() }
    const dir = mkdtempSync(join(tmpdir(), `p2pbak-${prefix}-`))
    const people: Person[] = []
    const c: { lab?: NatLab, dir: string, people: Person[] } = { dir, people }
    current = c
    const lab = await createNatLab(opts)
    c.lab = lab
    return {
      lab,
      dir,
      person: (name, host, daemonArgs) => {
        const p: Person = { name, host, home: join(dir, name), log: join(dir, `${name}.log`), ...(daemonArgs !== undefined ? { daemonArgs } : {}) }
        people.push(p)
        return p
      },
      logs: (chars = 4000) => people.map(p => `--- ${p.name}'s log ---\n${tail(p.log, chars)}`).join('\n')
    }
  }
}

/**
 * The part of the port-mapping specs (nat-upnp, nat-pmp) after ann's router mapped her port to
 * `mappedAddr`: bob reaches her directly over TCP there (both homes behind a symmetric NAT: WebRTC
 * could not), her backup goes to bob and ray and restores byte-exact without crossing ray's relay
 * (under 1 MB relayed for her: her 8 MB of shares would be far over), and the mapping is gone from
 * router A once her daemon stops.
 */
export async function directOverMapping (lab: NatLab, dir: string, { ray, bob, ann }: Record<'ray' | 'bob' | 'ann', Person>, mappedAddr: string): Promise<{ directMs: number, sourceBytes: number, backupMs: number, restoreMs: number, relayed: number }> {
  const t = Date.now()
  await waitFor('bob reaching ann directly at router A', async () => {
    const r = reachOf(await status(bob), ann)
    return r?.how === 'direct' && r.addr?.startsWith(`${mappedAddr}/`) === true
  }, 60_000).catch(async (err: unknown) => { throw new Error(`${String(err)}: bob's peers ${JSON.stringify((await status(bob)).peers)}\n--- bob's log ---\n${tail(bob.log, 3000)}\n--- ann's log ---\n${tail(ann.log, 5000)}\n--- ray's log ---\n${tail(ray.log, 3000)}`) })
  const directMs = Date.now() - t
  assert.equal(reachOf(await status(ann), bob)?.how, 'direct', 'and ann sees bob\'s connection coming from router B')

  const { sourceBytes, backupMs, restoreMs } = await backupAndRestoreFromFriends(dir, 'src', ann, [bob, ray], 8_000_000)
  assert.equal(reachOf(await status(bob), ann)?.how, 'direct', 'bob still reaches ann directly')
  const carried = (await status(ray)).reachability.carried
  // the relay counts every byte for both ends (network.md §15.2): ann's figure is all it carried for her, to bob included
  const relayed = carried[ann.peerId ?? '']?.bytes ?? 0
  assert.ok(relayed < 1_000_000, `ann's shares to bob did not go through ray's relay: ${JSON.stringify(carried)}`)

  await stopDaemon(ann)
  assert.deepEqual(lab.portMappings('a'), [], `the mapping is gone from router A: ${lab.upnpLog('a').slice(-2000)}`)
  return { directMs, sourceBytes, backupMs, restoreMs, relayed }
}
