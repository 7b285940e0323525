/**
 * A TCP proxy in front of one node's listener that injects the faults of real links into the
 * connections it carries: resets, stalls, delays, corruption and cuts. Nodes dial from their own
 * loopback address (127.0.0.x), so a proxy knows which node dialled it and can fault the traffic of
 * one node in both directions: what others send it (its own proxy) and what it sends others (theirs).
 * Bytes corrupted here fail Noise's authentication, so the node sees what it sees on a bad link: a
 * connection that dies. Random choices come from a seeded generator: a failing run can be repeated.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface Faults {
  /** probability, per chunk carried, that both sides get a TCP reset */
  reset?: number
  /** probability, per chunk, that one byte of it is flipped (Noise then drops the connection) */
  corrupt?: number
  /** every chunk is forwarded this long after it arrived (one-way latency; chunks behind it are not held up) */
  delayMs?: number
  /** nothing is forwarded while true (a suspended laptop, a peer that stalls); new connections hang too */
  stall?: boolean
  /** refuse new connections (the node is unreachable) */
  refuse?: boolean
}

interface Pair { client: Socket, upstream: Socket, source: string, bytes: number }

/** Bytes a direction holds before it stops reading its source (a link's buffers). */
const MAX_QUEUED = 8 * 1024 * 1024

export class FaultProxy {
  private server: Server | undefined
  private readonly pairs = new Set<Pair>()
  /** counters, for tests that check what happened */
  readonly stats = { connections: 0, resets: 0, corrupted: 0, refused: 0 }
  port = 0
  private host = '127.0.0.1'

  /**
   * @param target the node's real listener
   * @param faultsFor the faults that apply to a connection from `source` (the dialler's address)
   */
  constructor (
    private readonly target: { host: string, port: number },
    private readonly faultsFor: (source: string) => Faults,
    private readonly random: () => number
  ) {}

  /** Listens on `port` (0: any free port); `resume` listens on the same port again. */
  async start (host = '127.0.0.1', port = 0): Promise<void> {
    this.host = host
    this.server = createServer((client) => { this.accept(client) })
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject)
      this.server?.listen(port, host, () => resolve())
    })
    const addr = this.server.address()
    if (addr === null || typeof addr === 'string') throw new Error('the proxy has no TCP address')
    this.port = addr.port
  }

  /**
   * Stops listening, keeping the port (a machine switched off: a dial is refused at once, as by a
   * host whose port is closed, instead of accepted and then reset). Give it a port below the ephemeral
   * range (ports.ts) so no other socket takes it meanwhile.
   */
  async pause (): Promise<void> {
    this.resetAll()
    const server = this.server
    this.server = undefined
    if (server !== undefined) await new Promise<void>(resolve => server.close(() => resolve()))
  }

  /** Listens again on the port it had (after `pause`). */
  async resume (): Promise<void> {
    if (this.server === undefined) await this.start(this.host, this.port)
  }

  private accept (client: Socket): void {
    const source = (client.remoteAddress ?? '').replace(/^::ffff:/, '')
    if (this.faultsFor(source).refuse === true) {
      this.stats.refused++
      client.resetAndDestroy()
      return
    }
    this.stats.connections++
    const upstream = connect(this.target.port, this.target.host)
    const pair: Pair = { client, upstream, source, bytes: 0 }
    this.pairs.add(pair)
    const end = (): void => {
      this.pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
    this.pipe(pair, client, upstream)
    this.pipe(pair, upstream, client)
  }

  /**
   * Forwards `from` to `to` chunk by chunk, in order, applying the faults in force for this pair. A
   * delay is latency, not a rate: each chunk leaves `delayMs` after it arrived, while the chunks
   * behind it keep arriving (up to MAX_QUEUED bytes held, as a link's buffers would).
   */
  private pipe (pair: Pair, from: Socket, to: Socket): void {
    let queue: Promise<void> = Promise.resolve()
    let queued = 0
    from.on('data', (chunk: Buffer) => {
      const due = Date.now() + (this.faultsFor(pair.source).delayMs ?? 0)
      queued += chunk.byteLength
      if (queued > MAX_QUEUED) from.pause()
      queue = queue.then(async () => {
        const wait = due - Date.now()
        if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
        await this.carry(pair, chunk, to)
        queued -= chunk.byteLength
        if (queued <= MAX_QUEUED / 2 && from.isPaused() && !from.destroyed) from.resume()
      })
    })
    from.on('end', () => { void queue.then(() => { if (!to.destroyed) to.end() }) })
  }

  private async carry (pair: Pair, chunk: Buffer, to: Socket): Promise<void> {
    // a stall holds the bytes (and, through pause, everything behind them) until it is lifted
    while (this.faultsFor(pair.source).stall === true && this.pairs.has(pair)) await new Promise(resolve => setTimeout(resolve, 20))
    if (!this.pairs.has(pair) || to.destroyed) return
    const f = this.faultsFor(pair.source)
    if (f.reset !== undefined && this.random() < f.reset) {
      this.stats.resets++
      pair.client.resetAndDestroy()
      pair.upstream.resetAndDestroy()
      this.pairs.delete(pair)
      return
    }
    let out = chunk
    if (f.corrupt !== undefined && chunk.byteLength > 0 && this.random() < f.corrupt) {
      this.stats.corrupted++
      out = Buffer.from(chunk)
      const i = Math.floor(this.random() * out.byteLength)
      out[i] = (out[i] as number) ^ 0x5a
    }
    pair.bytes += out.byteLength
    if (!to.destroyed) to.write(out)
  }

  /** Resets every connection it carries now (a router reboot, a laptop changing network). */
  resetAll (): void {
    for (const p of this.pairs) {
      p.client.resetAndDestroy()
      p.upstream.resetAndDestroy()
    }
    this.pairs.clear()
  }

  async stop (): Promise<void> {
    this.resetAll()
    await new Promise<void>(resolve => { if (this.server === undefined) resolve(); else this.server.close(() => resolve()) })
  }
}
