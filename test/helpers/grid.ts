/**
 * The fault grid: a friend group of real node services (src/node/service.ts) in this process, on
 * loopback TCP, each behind a FaultProxy, all on one manual clock. Commands go through each node's
 * real control socket (runCli → daemon.sock → the service), exactly as a user's do; rounds
 * (refresh, audits, repair, scheduled backups) run only when the test asks (`round()`), at the
 * clock's current time, so grace periods, audit intervals and repair take no real waiting.
 *
 * Faults are per node and apply to its traffic in both directions (see fault-proxy.ts): `faults(name,
 * { reset: 0.05 })`, `{ stall: true }`, `{ refuse: true }` (unreachable), `{ corrupt: 0.01 }`,
 * `{ delayMs: 50 }`.
 *
 * A node can also lie as a malicious member would (issue 11): `lie(name, { shares: 'forged-header' })`,
 * `{ list: 'endless' | 'drip' | 'claims' }`, `{ records: 'garbage' }` (see liar.ts). Its shard server
 * then answers from its held stores through a lying proxy (the product's seam for this,
 * NetworkOptions.wrapHeldStore), while its audits answer honestly from the real store; `listBounds`
 * shrinks how long every node follows a friend's listing, so that a dripping liar costs seconds.
 * test/integration/malicious-peer.spec.ts runs each lie against the others' CLI.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { main } from '../../src/cli/main.js'
import { Home } from '../../src/node/home.js'
import { phraseToSeed } from '../../src/crypto/phrase.js'
import { NodeService, type RoundReport, type ServiceClock } from '../../src/node/service.js'
import type { Settings } from '../../src/node/group-state.js'
import type { ListBounds } from '../../src/repo/index.js'
import { runCli, type CliResult } from './cli.js'
import { FaultProxy, type Faults } from './fault-proxy.js'
import { lyingStore, type Lies } from './liar.js'
import { Rng } from './seeded.js'
import { stablePort } from './ports.js'

const KDF = { opslimit: 1, memlimit: 8192 }

/** Time that moves only when the test says; the service's timer never fires (rounds are explicit). */
export class ManualClock implements ServiceClock {
  constructor (private t = Date.UTC(2026, 0, 1)) {}
  readonly now = (): number => this.t
  readonly every = (): (() => void) => () => {}
  advance (ms: number): void { this.t += ms }
}

export interface GridNode {
  name: string
  dir: string
  /** the loopback address it dials from */
  ip: string
  userId: string
  service: NodeService | undefined
  proxy: FaultProxy
  /** the node's real listener port (behind the proxy) */
  port: number
  faults: Faults
  /** the recovery phrase of its person (a second device of the same person is recovered from it) */
  phrase: string
  /** what its shard server lies about (liar.ts); `{}`: nothing */
  lies: Lies
}

export interface GridOptions {
  /** seed of the fault generator @default 1 */
  seed?: number
  clock?: ManualClock
  /** group.json settings every node runs with (audit interval, offline grace, …) */
  settings?: Settings
  /** how long and how far every node follows a friend's listing (HomeOptions.listBounds) @default the product's */
  listBounds?: ListBounds
  /** how long a round starts moving packs into the group (NodeServiceOptions.placeBudgetMs) @default the product's */
  placeBudgetMs?: number
  /** how long a command waits for a refresh a device stalls (NetworkOptions.readyPatienceMs) @default the product's 15 s */
  readyPatienceMs?: number
}

/** Faults of two nodes on one connection: either side's fault applies. */
function combine (a: Faults, b: Faults | undefined): Faults {
  if (b === undefined) return a
  return {
    reset: Math.max(a.reset ?? 0, b.reset ?? 0),
    corrupt: Math.max(a.corrupt ?? 0, b.corrupt ?? 0),
    delayMs: (a.delayMs ?? 0) + (b.delayMs ?? 0),
    stall: a.stall === true || b.stall === true,
    refuse: a.refuse === true || b.refuse === true
  }
}

export class Grid {
  readonly dir: string
  readonly clock: ManualClock
  private readonly nodes = new Map<string, GridNode>()
  private readonly random: () => number
  /** ends the lies that never end by themselves (a dripping listing) */
  private readonly stopped = new AbortController()

  private constructor (private readonly opts: GridOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'p2pbak-grid-'))
    this.clock = opts.clock ?? new ManualClock()
    const rng = new Rng(opts.seed ?? 1)
    this.random = () => rng.next()
  }

  /** Homes for `names` (no passphrase, cheap KDF), each node started behind its proxy. */
  static async start (names: readonly string[], opts: GridOptions = {}): Promise<Grid> {
    const grid = new Grid(opts)
    try {
      for (const [i, name] of names.entries()) await grid.add(name, `127.0.0.${10 + i}`)
    } catch (err: unknown) {
      await grid.stop()
      throw err
    }
    return grid
  }

  private async add (name: string, ip: string, seed?: Uint8Array): Promise<GridNode> {
    const dir = join(this.dir, name)
    const { identity, phrase } = await Home.init({ home: dir, passphrase: null, kdf: KDF, ...(seed !== undefined ? { seed } : {}) })
    const port = await stablePort()
    const node: GridNode = { name, dir, ip, userId: identity.userId, service: undefined, port, faults: {}, phrase, lies: {}, proxy: undefined as unknown as FaultProxy }
    node.proxy = new FaultProxy({ host: '127.0.0.1', port }, (source) => combine(node.faults, this.byIp(source)?.faults), this.random)
    await node.proxy.start('127.0.0.1', await stablePort()) // never the node's own: stablePort hands out a port once
    this.nodes.set(name, node)
    await this.startNode(name)
    return node
  }

  private byIp (ip: string): GridNode | undefined {
    for (const n of this.nodes.values()) if (n.ip === ip) return n
    return undefined
  }

  node (name: string): GridNode {
    const n = this.nodes.get(name)
    if (n === undefined) throw new Error(`no grid node ${name}`)
    return n
  }

  service (name: string): NodeService {
    const s = this.node(name).service
    if (s === undefined) throw new Error(`${name}'s node is stopped`)
    return s
  }

  get names (): string[] { return [...this.nodes.keys()] }

  /** Starts (or restarts) a node's service on its fixed port, behind its proxy. */
  async startNode (name: string): Promise<NodeService> {
    const n = this.node(name)
    if (n.service !== undefined) return n.service
    await n.proxy.resume()
    n.service = await NodeService.start({
      home: { home: n.dir, passphrase: async () => null, ...(this.opts.listBounds !== undefined ? { listBounds: this.opts.listBounds } : {}) },
      network: {
        listen: [`/ip4/127.0.0.1/tcp/${n.port}`], announce: [`/ip4/127.0.0.1/tcp/${n.proxy.port}`], dialFrom: n.ip,
        wrapHeldStore: (_owner, store) => lyingStore(store, () => n.lies, this.stopped.signal),
        ...(this.opts.readyPatienceMs !== undefined ? { readyPatienceMs: this.opts.readyPatienceMs } : {})
      },
      clock: this.clock,
      ...(this.opts.settings !== undefined ? { settings: this.opts.settings } : {}),
      ...(this.opts.placeBudgetMs !== undefined ? { placeBudgetMs: this.opts.placeBudgetMs } : {}),
      runCommand: async (argv, io, services) => await main(argv, { ...io, env: { ...io.env, P2PBAK_HOME: n.dir } }, services)
    })
    return n.service
  }

  /** Stops a node's service (a machine switched off): its proxy stops listening, so a dial to it is refused. */
  async stopNode (name: string): Promise<void> {
    const n = this.node(name)
    const s = n.service
    n.service = undefined
    await n.proxy.pause()
    await s?.stop()
  }

  /** Sets the faults of one node's traffic (both directions); `{}` heals it. */
  faults (name: string, faults: Faults): void {
    const n = this.node(name)
    n.faults = faults
    // a node made unreachable or stalled loses the connections it had (as a router would drop them)
    if (faults.refuse === true) {
      n.proxy.resetAll()
      for (const other of this.nodes.values()) if (other !== n) other.proxy.resetAll()
    }
  }

  /** Makes a node's shard server lie (liar.ts: forged shares, endless listings, garbage records); `{}`: honest again. Its audits stay honest. */
  lie (name: string, lies: Lies): void { this.node(name).lies = lies }

  /** A command as the user types it, through the node's control socket. */
  async cli (name: string, ...argv: string[]): Promise<CliResult> {
    return await runCli(argv, { P2PBAK_HOME: this.node(name).dir })
  }

  /** The same, failing the test with the command's output unless it exits 0. */
  async ok (name: string, ...argv: string[]): Promise<CliResult> {
    const r = await this.cli(name, ...argv)
    if (r.code !== 0) throw new Error(`${name}: p2pbak ${argv.join(' ')} exited ${r.code}\n${r.stderr}${r.stdout}`)
    return r
  }

  /** One round of a node (refresh, local packs, audits, repair, publish), queued behind its commands. */
  async round (name: string): Promise<RoundReport> { return await this.service(name).runRound() }

  /** A round of every running node, one after another. */
  async roundAll (): Promise<void> {
    for (const n of this.nodes.values()) if (n.service !== undefined) await n.service.runRound()
  }

  /**
   * Another device of `of`'s person: a home recovered from the same phrase, started, and joined to
   * the group through an invite from `of` (as `recover` then `join CODE` on a new machine).
   */
  async addDevice (name: string, of: string): Promise<GridNode> {
    const node = await this.add(name, `127.0.0.${10 + this.nodes.size}`, phraseToSeed(this.node(of).phrase))
    const inv = (await this.ok(of, 'group', 'invite', '--json')).json<{ invite: string }>().invite
    await this.ok(name, 'join', inv)
    return node
  }

  /** The first node creates a group; every other joins with an invite, as people do. */
  async formGroup (name = 'friends', createFlags: string[] = []): Promise<void> {
    const [first, ...others] = this.names as [string, ...string[]]
    await this.ok(first, 'group', 'create', name, ...createFlags)
    for (const o of others) {
      const inv = (await this.ok(first, 'group', 'invite', '--json')).json<{ invite: string }>().invite
      await this.ok(o, 'join', inv)
    }
  }

  async stop (): Promise<void> {
    this.stopped.abort()
    for (const n of this.nodes.values()) {
      await this.stopNode(n.name).catch((err: unknown) => { process.stderr.write(`grid: stopping ${n.name}: ${String(err)}\n`) })
      await n.proxy.stop()
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
