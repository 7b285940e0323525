/**
 * `p2pbak demo`: a whole friend group in one process, on loopback, in a temp dir. Five homes (ann,
 * bob, cid, dee, eve) each run the node service of the daemon (service.ts: home, libp2p node with its
 * DHT, control socket) on 127.0.0.1; the demo drives every step itself, so the service's rounds
 * never run on their own (its timer never fires). Ann creates a group, the others offer
 * disk and join with her invite codes; ann backs up a sample folder, two friends holding her shares
 * stop, ann restarts and restores `latest` from the friends that are left, and the restore is compared
 * with the sample byte for byte (types, modes, mtimes, symlink targets). The result is a report (a
 * story in plain lines plus figures); nothing is printed here.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { AbortedError, TimeoutError, errorMessage } from '../errors.js'
import { Archiver, Restorer, nativeAvailable } from '../backup/index.js'
import { listSnapshots, resolveSnapshot, type Repository } from '../repo/index.js'
import type { TreeId } from '../ids.js'
import { toHex } from '../util/bytes.js'
import { Home } from './home.js'
import type { NetworkNode } from './network.js'
import { snapshotHealth, type SnapshotHealth } from './health.js'
import { bytesUnder, compareTrees, filesUnder, writeSample } from './demo-files.js'
import { NodeService, type ServiceClock } from './service.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('demo')

export { compareTrees } from './demo-files.js'

export const DEMO_NAMES = ['ann', 'bob', 'cid', 'dee', 'eve'] as const

export interface DemoOptions {
  /** where the temp dir is made @default os.tmpdir() */
  tmpRoot?: string
  /** keep the temp dir (homes, sample, restore) instead of deleting it @default false */
  keep?: boolean
  backend?: 'sodium-native' | 'libsodium-wrappers'
  signal?: AbortSignal
  /** each line of the story, as it happens */
  onStory?: (line: string) => void
  /** random (incompressible) bytes in the sample's photo @default 4 MiB */
  sampleBytes?: number
  /** how long peers may take to come online, and restarts to reconnect @default 20 s */
  timeoutMs?: number
  /** disk each friend offers @default 1 GiB */
  contributeBytes?: number
}

export interface DemoNode {
  name: string
  userId: string
  peerId: string
  /** what the node offers friends (null: the automatic share of its free disk) */
  contributeBytes: number | null
  /** bytes of ann's data under this home's held/<ann's user id>/ (shares and records) */
  heldBytes: number
  /** ann's shares this node holds (files), and their bytes */
  shares: number
  shareBytes: number
  stopped: boolean
}

export interface DemoHealth { health: number, canLose: number, readable: boolean }

export interface DemoReport {
  dir: string
  kept: boolean
  group: string
  nodes: DemoNode[]
  backup: {
    snapshotId: string, files: number, dirs: number, bytes: number, bytesAdded: number,
    packs: number, k: number, m: number, holders: string[], ownShareBytes: number, durationMs: number
  } | null
  healthBefore: DemoHealth | null
  healthAfter: DemoHealth | null
  stopped: string[]
  restore: { target: string, snapshotId: string, files: number, bytesWritten: number, errors: string[], durationMs: number } | null
  verify: { entries: number, files: number, differences: string[] } | null
  verified: boolean
  error: string | null
  timings: { setupMs: number, backupMs: number, restoreMs: number, verifyMs: number, totalMs: number }
  story: string[]
}

interface Peer { name: string, dir: string, service: NodeService, home: Home, net: NetworkNode, running: boolean }

const LISTEN = ['/ip4/127.0.0.1/tcp/0']
/** real time, and a timer that never fires: the demo runs each step itself, in its own order */
const DEMO_CLOCK: ServiceClock = { now: () => Date.now(), every: () => () => {} }
const GiB = 1024 ** 3

export async function runDemo (opts: DemoOptions = {}): Promise<DemoReport> {
  const t0 = Date.now()
  const timeoutMs = opts.timeoutMs ?? 20_000
  const signal = opts.signal
  const dir = await mkdtemp(join(opts.tmpRoot ?? tmpdir(), 'p2pbak-demo-'))
  const report: DemoReport = {
    dir, kept: opts.keep === true, group: 'demo', nodes: [], backup: null, healthBefore: null, healthAfter: null,
    stopped: [], restore: null, verify: null, verified: false, error: null,
    timings: { setupMs: 0, backupMs: 0, restoreMs: 0, verifyMs: 0, totalMs: 0 }, story: []
  }
  const say = (line: string): void => { report.story.push(line); opts.onStory?.(line) }
  const peers: Peer[] = []
  let cancelled: unknown
  try {
    say(`p2pbak demo: ${DEMO_NAMES.length} nodes on 127.0.0.1 in ${dir}`)
    await demoSteps(dir, peers, report, say, { ...opts, timeoutMs })
  } catch (err: unknown) {
    if (err instanceof AbortedError || (err instanceof Error && err.name === 'AbortError') || signal?.aborted === true) cancelled = err
    report.error = errorMessage(err)
  } finally {
    for (const p of peers) if (p.running) await stopPeer(p)
    if (opts.keep !== true) await rm(dir, { recursive: true, force: true }).catch((err: unknown) => { log.error('cannot remove %s: %s', dir, errorMessage(err)) })
  }
  if (cancelled !== undefined) throw cancelled
  report.timings.totalMs = Date.now() - t0
  if (report.error !== null) say(`FAIL: ${report.error}`)
  else say(`${report.verified ? 'PASS' : 'FAIL'} in ${seconds(report.timings.totalMs)}`)
  if (opts.keep === true) say(`kept ${dir} (homes ${DEMO_NAMES.join(', ')}; sample/; restore/)`)
  return report
}

async function demoSteps (dir: string, peers: Peer[], report: DemoReport, say: (line: string) => void, opts: DemoOptions & { timeoutMs: number }): Promise<void> {
  const { signal, timeoutMs } = opts
  const contribute = opts.contributeBytes ?? GiB
  const tSetup = Date.now()
  for (const name of DEMO_NAMES) {
    const home = join(dir, name)
    // No passphrase, so the key file is stored unencrypted and no Argon2id runs at all; the cheap kdf
    // below would only matter if one were set. Fine for a throwaway demo, never for real keys.
    await Home.init({ home, passphrase: null, kdf: { opslimit: 1, memlimit: 8192 }, ...(opts.backend !== undefined ? { backend: opts.backend } : {}) })
    peers.push(await startPeer(name, home, opts.backend))
    throwIfAborted(signal)
  }
  const [ann, ...friends] = peers as [Peer, ...Peer[]]
  await ann.net.createGroup(report.group)
  for (const f of friends) {
    f.net.state.file.roles.contributeBytes = contribute
    await f.net.state.save()
    await f.net.join(await ann.net.invite(60 * 60 * 1000))
    throwIfAborted(signal)
  }
  // A joiner's first connection was made before it was on the roster, so ann did not note its address
  // (she needs it after her restart). Each round, a friend ann has no address for reconnects, as its
  // daemon would on its next refresh. Retrying matters on loopback: libp2p refuses more than 5 inbound
  // connections a second from one host, and all five nodes are 127.0.0.1.
  const annPid = peerIdFromString(ann.net.peerId)
  await waitFor(`ann to see ${friends.length} persisters online`, timeoutMs, signal, async () => {
    for (const f of friends) {
      if (ann.net.state.peers[f.net.peerId] !== undefined) continue
      // a connection already gone is what we want
      await f.net.node.hangUp(annPid).catch((err: unknown) => { log('%s hanging up on ann: %s', f.name, errorMessage(err)) })
      await f.net.refresh(timeoutMs)
    }
    await ann.net.refresh(timeoutMs)
    const online = new Set(ann.net.directory.candidates().filter(c => c.online).map(c => c.peerId))
    const offline = friends.filter(f => !online.has(f.net.peerId))
    const unknown = friends.filter(f => ann.net.state.peers[f.net.peerId] === undefined)
    if (offline.length === 0 && unknown.length === 0) return undefined
    return `${offline.length > 0 ? `not a persister online: ${names(offline)}` : ''}${offline.length > 0 && unknown.length > 0 ? '; ' : ''}${unknown.length > 0 ? `no address known for ${names(unknown)}` : ''}`
  })
  await ann.service.ready()
  report.timings.setupMs = Date.now() - tSetup
  say(`ann created group "${report.group}"; ${names(friends)} contribute ${bytes(contribute)} each and joined (${seconds(report.timings.setupMs)})`)

  // ---- backup ----
  const sample = join(dir, 'sample')
  await writeSample(sample, opts.sampleBytes ?? 4 * 1024 * 1024)
  const archiver = new Archiver({ repo: ann.home.repo, cdc: ann.home.cdc })
  const b = await archiver.run({ paths: [sample], host: 'ann', program: 'p2pbak demo', ...(signal !== undefined ? { signal } : {}) })
  report.timings.backupMs = b.durationMs
  const byPeer = new Map(peers.map(p => [p.net.peerId, p.name]))
  const packs = await packsOf(ann.home.repo, b.tree)
  let k = 0
  let m = 0
  const holders = new Set<string>()
  for (const id of packs) {
    const info = ann.home.repo.index.getPack(Buffer.from(id, 'hex'))
    if (info !== undefined && info.k + info.m > k + m) { k = info.k; m = info.m }
    for (const h of ann.home.repo.index.getPlacement(Buffer.from(id, 'hex'))?.values() ?? []) holders.add(byPeer.get(h.replace(/^peer:/, '')) ?? h)
  }
  const ownShareBytes = await bytesUnder(join(ann.dir, 'store', 'shares'))
  report.nodes = await nodeReports(peers, ann.home.identity.userId)
  report.backup = {
    snapshotId: toHex(b.snapshotId), files: b.filesNew + b.filesChanged + b.filesUnchanged, dirs: b.dirs, bytes: b.bytesProcessed,
    bytesAdded: b.bytesAdded, packs: packs.size, k, m, holders: [...holders].sort(), ownShareBytes, durationMs: b.durationMs
  }
  const holding = report.nodes.filter(n => n.shares > 0)
  const recordsOnly = report.nodes.filter(n => n.name !== 'ann' && n.shares === 0 && n.heldBytes > 0)
  const sizes = new Set(holding.map(n => n.shareBytes))
  const where = sizes.size === 1 ? `${names(holding)} (${bytes(holding[0]?.shareBytes ?? 0)} each)` : holding.map(n => `${n.name} (${bytes(n.shareBytes)})`).join(', ')
  say(`ann backed up ${bytes(b.bytesProcessed)} (${report.backup.files} files, ${b.dirs} dirs) in ${seconds(b.durationMs)} as ${k}+${m} erasure coding ` +
    `(${k === 1 ? `${k + m} full copies` : `any ${k} of ${k + m} shares rebuild a pack`}): shares on ${where}` +
    `${recordsOnly.length > 0 ? `; ${names(recordsOnly)} hold${recordsOnly.length === 1 ? 's' : ''} only the snapshot record` : ''}` +
    `; ${ownShareBytes === 0 ? 'none' : bytes(ownShareBytes)} on ann's own disk`)
  report.healthBefore = onlySnapshot(await snapshotHealth(ann.home, ann.net))
  say(`snapshot health: ${report.healthBefore.health} of ${k + m} holders online, ${k} needed: ann can lose ${report.healthBefore.canLose} of them`)

  // ---- lose two friends that hold shares, the ones holding the most ----
  const victims = [...holding].sort((x, y) => y.shares - x.shares || x.name.localeCompare(y.name)).slice(0, 2)
  for (const v of victims) {
    const p = peers.find(q => q.name === v.name) as Peer
    await stopPeer(p)
    v.stopped = true
    report.stopped.push(v.name)
  }
  // ann restarts as a new process would: a fresh home and node that know only what is on her disk
  await stopPeer(ann)
  const ann2 = await startPeer('ann', ann.dir, opts.backend)
  peers[0] = ann2
  await waitFor('ann to reconnect to the friends still running', timeoutMs, signal, async () => {
    await ann2.net.refresh(timeoutMs)
    const missing = friends.filter(f => f.running && ann2.net.node.getConnections(peerIdFromString(f.net.peerId)).length === 0)
    return missing.length === 0 ? undefined : `not reached: ${names(missing)}`
  })
  await ann2.service.ready()
  report.healthAfter = onlySnapshot(await snapshotHealth(ann2.home, ann2.net))
  say(`stopped ${report.stopped.join(' and ')}; ann restarted and reached ${names(friends.filter(f => f.running))}; ` +
    `snapshot ${report.healthAfter.readable ? `still readable (can lose ${report.healthAfter.canLose} more)` : 'NOT readable'}`)

  // ---- restore latest and verify ----
  const tRestore = Date.now()
  const { snapshots } = await listSnapshots(ann2.home.repo.packs, ann2.home.sodium, ann2.home.identity)
  const snap = resolveSnapshot(snapshots, 'latest')
  const target = join(dir, 'restore')
  const r = await new Restorer(ann2.home.repo, ann2.home.cdc).run(snap.record.tree, { target, ...(signal !== undefined ? { signal } : {}) })
  report.timings.restoreMs = Date.now() - tRestore
  report.restore = { target, snapshotId: toHex(snap.id), files: r.files, bytesWritten: r.bytesWritten, errors: r.errors.map(e => `${e.path}: ${e.error}`), durationMs: report.timings.restoreMs }
  const tVerify = Date.now()
  report.verify = await compareTrees(sample, join(target, sample), nativeAvailable ? 1n : 1000n)
  report.timings.verifyMs = Date.now() - tVerify
  report.verified = report.verify.differences.length === 0 && r.errors.length === 0 && report.restore.snapshotId === report.backup.snapshotId
  const d = report.verify.differences
  say(report.verified
    ? `restored to ${target}: ${r.files} files verified byte-exact (content, modes, mtimes, symlink) in ${seconds(report.timings.restoreMs + report.timings.verifyMs)}`
    : `restored to ${target}: ${r.errors.length} restore error(s), ${d.length} difference(s)${d.length > 0 ? `: ${d.slice(0, 5).join('; ')}` : ''}${r.errors.length > 0 ? `; ${report.restore.errors.slice(0, 3).join('; ')}` : ''}`)
}

/** A node as the daemon runs it (service.ts); it takes no commands: the demo calls the node itself. */
async function startPeer (name: string, dir: string, backend: DemoOptions['backend']): Promise<Peer> {
  const service = await NodeService.start({
    home: { home: dir, passphrase: async () => null, ...(backend !== undefined ? { backend } : {}) },
    network: { listen: LISTEN, mdns: false },
    clock: DEMO_CLOCK,
    runCommand: async (argv, io) => {
      io.stderr.write(`p2pbak demo: ${name}'s node takes no commands (${argv[0] ?? ''})\n`)
      return 2
    }
  })
  return { name, dir, service, home: service.home, net: service.net, running: true }
}

async function stopPeer (p: Peer): Promise<void> {
  p.running = false
  await p.service.stop().catch((err: unknown) => { log.error('stopping %s\'s node: %s', p.name, errorMessage(err)) })
}

async function nodeReports (peers: Peer[], owner: string): Promise<DemoNode[]> {
  return await Promise.all(peers.map(async p => {
    const held = join(p.dir, 'held', owner)
    const shareFiles = await filesUnder(join(held, 'shares'))
    return {
      name: p.name, userId: p.home.identity.userId, peerId: p.net.peerId, contributeBytes: p.net.state.file.roles.contributeBytes,
      heldBytes: await bytesUnder(held), shares: shareFiles.length, shareBytes: shareFiles.reduce((a, f) => a + f, 0), stopped: false
    }
  }))
}

/** Every pack a snapshot's tree uses (hex ids): the trees' packs and their files' chunks' packs. */
async function packsOf (repo: Repository, root: TreeId): Promise<Set<string>> {
  const out = new Set<string>()
  const walk = async (tree: TreeId): Promise<void> => {
    const loc = repo.index.getBlob(tree)
    if (loc !== undefined) out.add(toHex(loc.pack))
    for (const n of (await repo.loadTree(tree)).nodes) {
      if (n.subtree !== undefined) await walk(n.subtree)
      for (const c of n.content ?? []) { const l = repo.index.getBlob(c); if (l !== undefined) out.add(toHex(l.pack)) }
    }
  }
  await walk(root)
  return out
}

function onlySnapshot (list: SnapshotHealth[]): DemoHealth {
  const s = list[0]
  return s === undefined ? { health: 0, canLose: 0, readable: false } : { health: s.health, canLose: s.canLose, readable: s.readable }
}

/** Polls `pending` (what is still missing, or undefined when done) every 100 ms until done or the deadline. */
async function waitFor (what: string, timeoutMs: number, signal: AbortSignal | undefined, pending: () => Promise<string | undefined>): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const missing = await pending()
    if (missing === undefined) return
    throwIfAborted(signal)
    if (Date.now() > deadline) throw new TimeoutError(`timed out after ${seconds(timeoutMs)} waiting for ${what} (${missing})`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

function throwIfAborted (signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortedError('cancelled')
}

function names (list: ReadonlyArray<{ name: string }>): string {
  const n = list.map(x => x.name)
  return n.length <= 1 ? n.join('') : `${n.slice(0, -1).join(', ')} and ${n.at(-1) ?? ''}`
}

function bytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${v} B` : `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i] ?? ''}`
}

function seconds (ms: number): string { return `${(ms / 1000).toFixed(1)} s` }
