/**
 * NAT-PMP port mappings (src/node/pmp-mapping.ts, docs/network.md §15.8): the default gateway read from
 * /proc/net/route, when the router is asked and what (on an injected clock, with a router that
 * answers as told), and the library's client against a NAT-PMP server on loopback (what goes on the
 * wire, retransmission after silence, a refusal taken as final).
 */
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { defaultGatewayIn, libraryClient, PmpMapping, type Clock, type MappingBook, type PmpClient, type RouterSearch } from '../../../src/node/pmp-mapping.js'

const HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT'

describe('node/pmp-mapping: the default gateway from /proc/net/route', () => {
  it('reads the up default route with a gateway, little-endian hex (a home host of the NAT lab)', () => {
    const text = [HEAD, 'eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0', 'eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', ''].join('\n')
    assert.equal(defaultGatewayIn(text, true), '10.0.1.1')
  })

  it('takes the lowest metric among several default routes', () => {
    const text = [HEAD, 'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0', 'eth0\t00000000\tFE01A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0'].join('\n')
    assert.equal(defaultGatewayIn(text, true), '192.168.1.254')
  })

  it('skips routes that are not up default routes through a gateway (a blackhole, a link route, a /1 split)', () => {
    const text = [
      HEAD,
      'lan\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0', // blackhole default: no RTF_GATEWAY
      'tun0\t00000000\t0100080A\t0003\t0\t0\t0\t00000080\t0\t0\t0', // 0.0.0.0/1 of a VPN
      'eth0\t00000000\t0101000A\t0002\t0\t0\t0\t00000000\t0\t0\t0' // not up
    ].join('\n')
    assert.equal(defaultGatewayIn(text, true), undefined)
    assert.equal(defaultGatewayIn('', true), undefined)
    assert.equal(defaultGatewayIn(`${HEAD}\ngarbage line\n`, true), undefined)
  })

  it('reads the hex in network order on a big-endian machine', () => {
    assert.equal(defaultGatewayIn(`${HEAD}\neth0\t00000000\t0A000101\t0003\t0\t0\t0\t00000000\t0\t0\t0`, false), '10.0.1.1')
  })
})

/** timers run when the test moves the clock; each turn of the service is awaited before the next timer */
class FakeClock implements Clock {
  t = 1_000_000
  private timers: Array<{ at: number, fn: () => void, id: number }> = []
  private ids = 0
  now = (): number => this.t
  setTimeout = (fn: () => void, ms: number): unknown => { const id = ++this.ids; this.timers.push({ at: this.t + ms, fn, id }); return id }
  clearTimeout = (id: unknown): void => { this.timers = this.timers.filter(x => x.id !== id) }
  async advance (ms: number, svc: PmpMapping): Promise<void> {
    const end = this.t + ms
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at)
      const next = this.timers[0]
      if (next === undefined || next.at > end) break
      this.timers.shift()
      this.t = next.at
      next.fn()
      await svc.idle()
    }
    this.t = end
  }
}

class FakeBook implements MappingBook {
  mapped: string[] = []
  confirmed: string[] = []
  constructor (public listen: string[] = ['/ip4/127.0.0.1/tcp/4737', '/ip4/10.0.1.2/tcp/4737', '/ip4/198.18.0.2/tcp/4737', '/ip6/::1/tcp/4737']) {}
  getAddressesWithMetadata = (): Array<{ multiaddr: Multiaddr, type: string }> => this.listen.map(a => ({ multiaddr: multiaddr(a), type: 'transport' }))
  addPublicAddressMapping = (ip: string, port: number, extIp: string, extPort?: number): void => { this.mapped.push(`${ip}:${port}>${extIp}:${extPort ?? port}`) }
  removePublicAddressMapping = (ip: string, port: number, extIp: string, extPort?: number): void => { this.mapped = this.mapped.filter(m => m !== `${ip}:${port}>${extIp}:${extPort ?? port}`) }
  confirmObservedAddr = (addr: Multiaddr, options?: { type?: string, ttl?: number }): void => {
    assert.equal(options?.type, 'ip-mapping')
    assert.ok((options?.ttl ?? 0) > 1e15, 'confirmed for good, as upnp-nat does')
    this.confirmed.push(addr.toString())
  }
}

/** a router that answers as the test says, and remembers what it was asked (with the clock's time) */
class FakeRouter implements PmpClient {
  calls: string[] = []
  external: string | Error = '11.0.0.11'
  givePort: number | undefined
  mapFails: Error | undefined
  constructor (private readonly clock: FakeClock) {}
  private at (): string { return `${(this.clock.t - 1_000_000) / 1000}s` }
  externalIp = async (gw: string): Promise<string> => {
    this.calls.push(`${this.at()} external ${gw}`)
    if (this.external instanceof Error) throw this.external
    return this.external
  }

  map = async (gw: string, port: number, leaseS: number): Promise<{ externalPort: number }> => {
    this.calls.push(`${this.at()} map ${gw} ${port} ${leaseS}s`)
    if (this.mapFails !== undefined) throw this.mapFails
    return { externalPort: this.givePort ?? port }
  }

  unmap = async (gw: string, port: number): Promise<void> => { this.calls.push(`${this.at()} unmap ${gw} ${port}`) }
}

const timeout = (): Error => Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' })

function setup (gateway: () => string | undefined = () => '10.0.1.1'): { clock: FakeClock, book: FakeBook, router: FakeRouter, search: RouterSearch, svc: PmpMapping } {
  const clock = new FakeClock()
  const book = new FakeBook()
  const router = new FakeRouter(clock)
  const search: RouterSearch = { upnpFound: false }
  const svc = new PmpMapping({ addressManager: book }, { search, client: router, clock, gateway: async () => gateway() })
  svc.start()
  svc.afterStart()
  return { clock, book, router, search, svc }
}

const MIN = 60_000

describe('node/pmp-mapping: when the router is asked, and what', () => {
  it('6 s after start (UPnP found nothing) maps the private TCP listen port for 1 h, announces it confirmed, renews it 5 min before the end, asks the external address every 5 min, and deletes it on stop', async () => {
    const { clock, book, router, svc } = setup()
    await clock.advance(5_999, svc)
    assert.deepEqual(router.calls, [], 'nothing asked during UPnP\'s first search')
    await clock.advance(1, svc)
    assert.deepEqual(router.calls, ['6s external 10.0.1.1', '6s map 10.0.1.1 4737 3600s'])
    assert.deepEqual(book.mapped, ['10.0.1.2:4737>11.0.0.11:4737'])
    assert.deepEqual(book.confirmed, ['/ip4/11.0.0.11/tcp/4737'])
    assert.deepEqual(svc.addrs(), ['/ip4/11.0.0.11/tcp/4737'])
    router.calls = []
    await clock.advance(60 * MIN, svc)
    assert.deepEqual(router.calls, [
      '306s external 10.0.1.1', '606s external 10.0.1.1', '906s external 10.0.1.1', '1206s external 10.0.1.1', '1506s external 10.0.1.1', '1806s external 10.0.1.1',
      '2106s external 10.0.1.1', '2406s external 10.0.1.1', '2706s external 10.0.1.1', '3006s external 10.0.1.1', '3306s external 10.0.1.1',
      '3306s map 10.0.1.1 4737 3600s', '3606s external 10.0.1.1'
    ])
    router.calls = []
    await svc.stop()
    assert.deepEqual(router.calls, ['3606s unmap 10.0.1.1 4737'])
    assert.deepEqual(book.mapped, [])
    await clock.advance(120 * MIN, svc)
    assert.equal(router.calls.length, 1, 'nothing asked after stop')
  })

  it('asks nothing when UPnP found a router in its first search', async () => {
    const { clock, router, search, svc } = setup()
    await clock.advance(2_000, svc)
    search.upnpFound = true
    await clock.advance(300 * MIN, svc)
    assert.deepEqual(router.calls, [])
    await svc.stop()
  })

  it('while no router answers, asks again once a minute, and no more once UPnP found one', async () => {
    const { clock, book, router, search, svc } = setup()
    router.external = timeout()
    await clock.advance(10 * MIN, svc)
    assert.deepEqual(router.calls, Array.from({ length: 10 }, (_, i) => `${6 + 60 * i}s external 10.0.1.1`))
    assert.deepEqual(book.mapped, [])
    search.upnpFound = true
    await clock.advance(60 * MIN, svc)
    assert.equal(router.calls.length, 10, 'nothing more')
    await svc.stop()
    assert.ok(!router.calls.some(c => c.includes('unmap')))
  })

  it('without a default gateway asks nothing, and looks again a minute later', async () => {
    let gw: string | undefined
    const { clock, book, router, svc } = setup(() => gw)
    await clock.advance(2 * MIN, svc)
    assert.deepEqual(router.calls, [])
    gw = '10.0.1.1'
    await clock.advance(MIN, svc)
    assert.deepEqual(router.calls, ['126s external 10.0.1.1', '126s map 10.0.1.1 4737 3600s'])
    assert.equal(book.mapped.length, 1)
    await svc.stop()
  })

  it('refuses a private external address (a second NAT at the provider): maps nothing, asks again 5 min later', async () => {
    const { clock, book, router, svc } = setup()
    router.external = '100.64.3.9'
    await clock.advance(6_000, svc)
    assert.deepEqual(router.calls, ['6s external 10.0.1.1'])
    assert.deepEqual(book.mapped, [])
    await clock.advance(5 * MIN, svc)
    assert.deepEqual(router.calls, ['6s external 10.0.1.1', '306s external 10.0.1.1'])
    await svc.stop()
  })

  it('announces the external port the router gave, moves the address with a new external address, and leaves a mapping on another port to lapse (not deleted: miniupnpd would delete by the port the library names, the internal one)', async () => {
    const { clock, book, router, svc } = setup()
    router.givePort = 4738
    await clock.advance(6_000, svc)
    assert.deepEqual(book.mapped, ['10.0.1.2:4737>11.0.0.11:4738'])
    router.external = '11.0.0.99'
    await clock.advance(5 * MIN, svc)
    assert.deepEqual(book.mapped, ['10.0.1.2:4737>11.0.0.99:4738'])
    assert.deepEqual(book.confirmed, ['/ip4/11.0.0.11/tcp/4738', '/ip4/11.0.0.99/tcp/4738'])
    await svc.stop()
    assert.ok(!router.calls.some(c => c.includes('unmap')), router.calls.join(', '))
    assert.deepEqual(book.mapped, [])
  })

  it('a renewal that fails is tried each minute; when the lease ends unrenewed the address goes and the router is searched again', async () => {
    const { clock, book, router, svc } = setup()
    await clock.advance(6_000, svc)
    router.mapFails = new Error('Out of Resources (no ports left)')
    await clock.advance(55 * MIN, svc)
    assert.equal(router.calls.at(-1), '3306s map 10.0.1.1 4737 3600s')
    assert.deepEqual(book.mapped, ['10.0.1.2:4737>11.0.0.11:4737'], 'still announced while the lease runs')
    await clock.advance(5 * MIN, svc)
    const maps = router.calls.filter(c => c.includes(' map '))
    // five renewals, the last one a minute before the lease ends; then the search maps anew, each minute
    assert.deepEqual(maps.slice(1), ['3306s map 10.0.1.1 4737 3600s', '3366s map 10.0.1.1 4737 3600s', '3426s map 10.0.1.1 4737 3600s', '3486s map 10.0.1.1 4737 3600s', '3546s map 10.0.1.1 4737 3600s', '3546s map 10.0.1.1 4737 3600s', '3606s map 10.0.1.1 4737 3600s'])
    assert.deepEqual(book.mapped, [], 'no longer announced once the lease cannot be renewed in time')
    assert.deepEqual(svc.addrs(), [])
    router.mapFails = undefined
    await clock.advance(MIN, svc)
    assert.deepEqual(book.mapped, ['10.0.1.2:4737>11.0.0.11:4737'], 'mapped again by the search')
    await svc.stop()
  })

  it('a laptop carried to another network (new default gateway) drops the old mapping without deleting it, and maps on the new router', async () => {
    let gw = '10.0.1.1'
    const { clock, book, router, svc } = setup(() => gw)
    await clock.advance(6_000, svc)
    gw = '10.0.2.1'
    book.listen = ['/ip4/10.0.2.101/tcp/4737']
    await clock.advance(5 * MIN, svc)
    assert.deepEqual(book.mapped, ['10.0.2.101:4737>11.0.0.11:4737'])
    assert.ok(!router.calls.some(c => c.includes('unmap')))
    assert.equal(router.calls.at(-1), '306s map 10.0.2.1 4737 3600s')
    await svc.stop()
    assert.equal(router.calls.at(-1), '306s unmap 10.0.2.1 4737')
  })
})

describe('node/pmp-mapping: the library\'s NAT-PMP client against a server on loopback', function () {
  let server: Socket | undefined
  let unavailable: string | undefined
  const got: Buffer[] = []
  /** what the server does with the next requests: drop, or answer with a result code */
  let plan: Array<'drop' | number> = []

  before(async () => {
    server = createSocket('udp4')
    server.on('message', (msg, rinfo) => {
      got.push(msg)
      const what = plan.shift() ?? 0
      if (what === 'drop') return
      const op = msg.readUInt8(1)
      const resp = Buffer.alloc(op === 0 ? 12 : 16)
      resp.writeUInt8(0, 0); resp.writeUInt8(128 + op, 1); resp.writeUInt16BE(what, 2); resp.writeUInt32BE(42, 4)
      if (op === 0) Buffer.from([11, 0, 0, 11]).copy(resp, 8)
      else { resp.writeUInt16BE(msg.readUInt16BE(4), 8); resp.writeUInt16BE(msg.readUInt16BE(6) + 1, 10); resp.writeUInt32BE(msg.readUInt32BE(8), 12) }
      server?.send(resp, rinfo.port, rinfo.address)
    })
    await new Promise<void>(resolve => {
      server?.once('error', (err) => { unavailable = `udp 127.0.0.1:5351 is taken here: ${err.message}`; resolve() })
      server?.bind(5351, '127.0.0.1', () => { resolve() })
    })
  })
  after(() => { try { server?.close() } catch { /* not bound */ } })
  beforeEach(function () {
    if (unavailable !== undefined) this.skip()
    got.length = 0
    plan = []
  })

  it('sends version 0 requests: external address (op 0), TCP mapping (op 2) suggesting the internal port, with the lifetime in seconds, deletion with lifetime 0', async () => {
    const client = libraryClient([500])
    const signal = new AbortController().signal
    assert.equal(await client.externalIp('127.0.0.1', signal), '11.0.0.11')
    assert.deepEqual([...(got[0] ?? [])], [0, 0])
    assert.deepEqual(await client.map('127.0.0.1', 4737, 3600, signal), { externalPort: 4738 }, 'the port the router gave')
    assert.equal(got.length, 2, 'one request: the external address is not asked again inside the mapping')
    assert.equal(got[1]?.toString('hex'), '0002000012811281' + '00000e10')
    await client.unmap('127.0.0.1', 4737, signal)
    assert.equal(got[2]?.toString('hex'), '0002000012811281' + '00000000')
  })

  it('asks again on a fresh socket when no answer came (250 ms, then 500 ms), and gives up after the last try', async () => {
    const client = libraryClient([250, 500, 1000])
    plan = ['drop', 'drop', 0]
    const t = Date.now()
    assert.equal(await client.externalIp('127.0.0.1', new AbortController().signal), '11.0.0.11')
    assert.equal(got.length, 3)
    assert.ok(Date.now() - t >= 700, 'waited 250 + 500 ms first')
    plan = ['drop', 'drop', 'drop']
    await assert.rejects(client.externalIp('127.0.0.1', new AbortController().signal), (err: Error) => err.name === 'TimeoutError')
    assert.equal(got.length, 6, 'three tries, no fourth')
  })

  it('takes a refusal as final (result code 2: NAT-PMP off), without asking again', async () => {
    const client = libraryClient([250, 500, 1000])
    plan = [2]
    await assert.rejects(client.map('127.0.0.1', 4737, 3600, new AbortController().signal), /Not Authorized/)
    assert.equal(got.length, 1)
  })

  it('stops asking when the caller aborts (the daemon stops)', async () => {
    const client = libraryClient([5000, 5000])
    plan = ['drop', 'drop']
    const ac = new AbortController()
    const t = Date.now()
    setTimeout(() => { ac.abort() }, 100)
    await assert.rejects(client.externalIp('127.0.0.1', ac.signal))
    assert.ok(Date.now() - t < 2000)
    assert.equal(got.length, 1)
  })
})
