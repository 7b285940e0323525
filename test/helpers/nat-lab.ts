/**
 * A small internet in network namespaces, for tests of friends in different homes (issue 12):
 *
 *                       "internet" namespace: bridge br0, 198.18.0.0/24 (RFC 2544 benchmark range)
 *        ┌────────────────┬──────────┴──────────┬────────────────────┐
 *   public host R     public host S       router A (WAN .11)     router B (WAN .12)
 *   198.18.0.2        198.18.0.3          MASQUERADE, drops      MASQUERADE, drops
 *                                         unsolicited WAN input  unsolicited WAN input
 *                                              │ 10.0.1.1              │ 10.0.2.1
 *                                         home A host(s)          home B host(s)
 *                                         10.0.1.2, .3 …          10.0.2.2, .3 …
 *
 * Each router does what a home router does: source NAT to its WAN address (MASQUERADE, or with
 * `symmetric`, `--random-fully`: a new random port per connection), no port forwarding, WAN input
 * and forwarding only for connections the home opened (conntrack ESTABLISHED,RELATED), and any
 * address that is not on one of its two links goes to a blackhole route (a dial from home A to home
 * B's private address times out, as it does on the real internet).
 *
 * Every namespace is held by a `sleep` process started with `unshare -n` under `setpriv --pdeathsig
 * KILL`: it dies with this process whatever happens, and a namespace vanishes with its last process
 * (with it its veths, addresses, routes and iptables rules). Nothing is created in the namespace of
 * the caller, and no name is registered (`ip netns`), so nothing can be left behind. Processes are run
 * inside a namespace with `nsenter -t PID -n` (also under `--pdeathsig KILL`).
 *
 * With `upnp`, a home's router also runs miniupnpd (UPnP IGD and NAT-PMP, Debian's miniupnpd-nftables),
 * as a home router whose owner left UPnP on: on its LAN side only, for its own home's hosts only
 * (`secure_mode`: a host maps ports to itself), its port mappings (DNAT) in an nftables table of its
 * own, and the router's firewall lets in what a mapping lets in (conntrack state DNAT). miniupnpd
 * With `natpmpOnly`, miniupnpd speaks NAT-PMP only (UPnP off: no SSDP, no HTTP). miniupnpd
 * refuses to map on a WAN address it deems reserved, 198.18/15 among them: such a lab takes another
 * `publicNet` (any range works: the namespaces have no way out).
 *
 * Needs Linux, root, `unshare`, `nsenter`, `setpriv` (util-linux), `ip` (iproute2) and `iptables`:
 * {@link natLabUnavailable} says why not when one is missing; with `upnp` also `miniupnpd` and `nft`
 * ({@link upnpLabUnavailable}).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface NatLabOptions {
  /** hosts on the public segment (R, a stranger, …). @default ['r'] */
  publicHosts?: string[]
  /** homes, each behind its own router, with the names of their hosts. @default { a: ['a'], b: ['b'] } */
  homes?: Record<string, string[]>
  /** MASQUERADE --random-fully: every outgoing connection gets a random public port (hole punching fails). @default false */
  symmetric?: boolean
  /** the homes whose router runs miniupnpd (UPnP IGD, NAT-PMP). @default [] */
  upnp?: string[]
  /** miniupnpd on those routers speaks NAT-PMP only (`enable_upnp=no`), as some Apple and OpenWrt routers do. @default false */
  natpmpOnly?: boolean
  /** the first three octets of the public segment (a /24). @default '198.18.0' (miniupnpd needs another: see above) */
  publicNet?: string
}

export interface LabHost {
  name: string
  /** the host's address (public hosts: on the bridge; home hosts: on their home LAN) */
  ip: string
  /** the home it sits in, or undefined on the public segment */
  home: string | undefined
  /** pid of the process holding its network namespace */
  pid: number
}

export interface NatLab {
  hosts: Record<string, LabHost>
  /** the WAN (public) address of each home's router */
  routers: Record<string, { wanIp: string, lanIp: string, pid: number }>
  /** runs a command to completion inside a host's (or router's) namespace; returns stdout */
  exec: (where: string, argv: string[]) => string
  /** spawns a process inside a host's namespace; it is killed if this process dies */
  spawnIn: (host: string, argv: string[], opts?: SpawnOptions) => ChildProcess
  /**
   * Carries a home host to another home, as a laptop is carried from one network to another: its
   * link to the old router goes, a new one to `home`'s router comes, with a new address there. The
   * processes running in the host keep running (their sockets on the old address are dead).
   * `home` {@link PUBLIC} puts it on the public segment instead, with a public address of its own.
   */
  move: (host: string, home: string) => void
  /** the port mappings miniupnpd made on a home's router now (its nftables DNAT rules, one line each) */
  portMappings: (home: string) => string[]
  /** what miniupnpd on a home's router logged so far */
  upnpLog: (home: string) => string
  /** iptables counters of a router (for the test log) */
  routerCounters: (home: string) => string
  /** kills every holder process: the namespaces, links and rules vanish with them */
  close: () => Promise<void>
}

const DEFAULT_PUBLIC_NET = '198.18.0'
/** {@link NatLab.move}'s name of the public segment */
export const PUBLIC = 'public'
const REQUIRED_TOOLS: ReadonlyArray<readonly [string, string]> = [
  ['unshare', 'util-linux'], ['nsenter', 'util-linux'], ['setpriv', 'util-linux'], ['ip', 'iproute2'], ['iptables', 'iptables']
]

/** Why this host cannot build a lab, or undefined if it can (checked by building a tiny one). */
export async function natLabUnavailable (): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`
  if (process.getuid?.() !== 0) return `making network namespaces needs root (uid ${String(process.getuid?.())})`
  for (const [tool, pkg] of REQUIRED_TOOLS) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }) } catch { return `\`${tool}\` is missing (Debian package ${pkg})` }
  }
  let lab: NatLab | undefined
  try {
    lab = await createNatLab({ publicHosts: ['r'], homes: { a: ['a'] } })
    lab.exec('a', ['ip', '-o', 'addr', 'show', 'eth0'])
  } catch (err: unknown) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? ''
    return `cannot build a NAT lab here: ${stderr !== '' ? stderr : String(err)}`
  } finally {
    await lab?.close()
  }
  return undefined
}

/** Why this host cannot run miniupnpd on a lab router, or undefined if it can (after {@link natLabUnavailable}). */
export function upnpLabUnavailable (): string | undefined {
  for (const [tool, pkg] of [['miniupnpd', 'miniupnpd-nftables'], ['nft', 'nftables']] as const) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }) } catch { return `\`${tool}\` is missing (Debian package ${pkg})` }
  }
  try {
    const version = execFileSync('miniupnpd', ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
    if (!version.includes('nftables')) return `this miniupnpd does not use nftables (the lab's iptables is iptables-nft): ${version.trim()}`
  } catch (err: unknown) {
    return `miniupnpd --version failed: ${String(err)}`
  }
  return undefined
}

/** addresses miniupnpd will not map on (its addr_is_reserved, for the ranges a lab might pick) */
const MINIUPNPD_RESERVED = [/^10\./, /^127\./, /^192\.168\./, /^198\.1[89]\./, /^192\.0\.2\./, /^198\.51\.100\./, /^203\.0\.113\./, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./, /^172\.(1[6-9]|2\d|3[01])\./]

/**
 * miniupnpd's nftables table: its forward chain (mappings' accept rules; the lab's iptables FORWARD
 * rule for DNAT does the letting in) and its NAT chains (the mappings themselves).
 */
const MINIUPNPD_NFT = `table inet miniupnpd {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`

/** A process whose only job is to hold a new network namespace (dies with this process). */
async function holder (): Promise<ChildProcess & { pid: number }> {
  const child = spawn('unshare', ['-n', '--', 'setpriv', '--pdeathsig', 'KILL', '--', 'sleep', 'infinity'], { stdio: 'ignore' })
  const pid = child.pid
  if (pid === undefined) throw new Error('could not start a namespace holder (unshare)')
  const own = readlinkSync('/proc/self/ns/net')
  const deadline = Date.now() + 10_000
  // unshare runs before the exec chain reaches sleep: wait until the process is in its own namespace
  for (;;) {
    let ns: string | undefined
    try { ns = readlinkSync(`/proc/${pid}/ns/net`) } catch { ns = undefined }
    if (ns !== undefined && ns !== own) break
    if (child.exitCode !== null || Date.now() > deadline) { child.kill('SIGKILL'); throw new Error('a namespace holder did not enter its namespace within 10 s') }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return child as ChildProcess & { pid: number }
}

export async function createNatLab (opts: NatLabOptions = {}): Promise<NatLab> {
  const publicHosts = opts.publicHosts ?? ['r']
  const homes = opts.homes ?? { a: ['a'], b: ['b'] }
  const holders: ChildProcess[] = []
  /** miniupnpd on routers */
  const daemons: ChildProcess[] = []
  const pids = new Map<string, number>()
  const hosts: Record<string, LabHost> = {}
  const routers: NatLab['routers'] = {}
  const PUBLIC_NET = opts.publicNet ?? DEFAULT_PUBLIC_NET
  const upnpHomes = opts.upnp ?? []
  for (const h of upnpHomes) if (homes[h] === undefined) throw new Error(`upnp: no home named ${h}`)
  if (upnpHomes.length > 0 && MINIUPNPD_RESERVED.some(r => r.test(`${PUBLIC_NET}.1`))) throw new Error(`miniupnpd maps no port on a WAN address in ${PUBLIC_NET}.0/24 (reserved): give the lab another publicNet`)
  const upnpDir = upnpHomes.length > 0 ? mkdtempSync(join(tmpdir(), 'p2pbak-upnp-')) : undefined
  const spawnIn = (host: string, argv: string[], spawnOpts: SpawnOptions = {}): ChildProcess => {
    const [cmd, ...args] = argv
    if (cmd === undefined) throw new Error('spawnIn needs a command')
    return spawn('nsenter', [...nsArgs(host), 'setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args], spawnOpts)
  }
  const nsArgs = (where: string): string[] => {
    const pid = pids.get(where)
    if (pid === undefined) throw new Error(`no namespace named ${where} in this lab`)
    return ['-t', String(pid), '-n', '--']
  }
  const exec = (where: string, argv: string[]): string =>
    execFileSync('nsenter', [...nsArgs(where), ...argv], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 }).toString()
  const sh = (where: string, script: string): void => { exec(where, ['sh', '-ec', script]) }
  const add = async (name: string): Promise<number> => {
    if (pids.has(name)) throw new Error(`the lab has two namespaces named ${name}`)
    const h = await holder()
    holders.push(h)
    pids.set(name, h.pid)
    return h.pid
  }
  let moved = 0
  const close = async (): Promise<void> => {
    await Promise.all([...daemons, ...holders].map(async h => {
      if (h.exitCode !== null || h.signalCode !== null) return
      const gone = new Promise(resolve => h.once('exit', resolve))
      h.kill('SIGKILL')
      await gone
    }))
    if (upnpDir !== undefined) rmSync(upnpDir, { recursive: true, force: true })
  }
  try {
    await add('internet')
    sh('internet', 'ip link set lo up; ip link add br0 type bridge; ip link set br0 up')
    /** a veth from the bridge into namespace `pid`, named `name` there */
    const plug = (pid: number, port: string, name: string): void => {
      sh('internet', `ip link add ${port} type veth peer name ${name}; ip link set ${name} netns ${pid}; ip link set ${port} master br0 up`)
    }
    if (publicHosts.includes('internet')) throw new Error('"internet" is the bridge\'s namespace')
    for (const [i, name] of publicHosts.entries()) {
      const pid = await add(name)
      const ip = `${PUBLIC_NET}.${2 + i}`
      plug(pid, `p${i}`, 'eth0')
      sh(name, `ip link set lo up; ip addr add ${ip}/24 dev eth0; ip link set eth0 up`)
      hosts[name] = { name, ip, home: undefined, pid }
    }
    for (const [h, [home, members]] of Object.entries(homes).entries()) {
      const router = `router-${home}`
      const rpid = await add(router)
      const wanIp = `${PUBLIC_NET}.${11 + h}`
      const lanNet = `10.0.${1 + h}`
      plug(rpid, `w${h}`, 'wan')
      const masquerade = `iptables -t nat -A POSTROUTING -o wan -j MASQUERADE${opts.symmetric === true ? ' --random-fully' : ''}`
      sh(router, [
        'ip link set lo up',
        `ip addr add ${wanIp}/24 dev wan`, 'ip link set wan up',
        'ip link add lan type bridge', `ip addr add ${lanNet}.1/24 dev lan`, 'ip link set lan up',
        // what is on neither link is dropped silently (another home's private address)
        'ip route add blackhole default',
        'sysctl -qw net.ipv4.ip_forward=1',
        masquerade,
        // a home router: nothing comes in from the WAN unless the home opened the connection
        'iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        'iptables -A INPUT -i wan -j DROP',
        'iptables -A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
        // …or what a port mapping of the router's UPnP lets in
        ...(upnpHomes.includes(home) ? ['iptables -A FORWARD -i wan -m conntrack --ctstate DNAT -j ACCEPT'] : []),
        'iptables -A FORWARD -i wan -j DROP'
      ].join('; '))
      routers[home] = { wanIp, lanIp: `${lanNet}.1`, pid: rpid }
      if (upnpHomes.includes(home) && upnpDir !== undefined) {
        const nft = join(upnpDir, `${home}.nft`)
        writeFileSync(nft, MINIUPNPD_NFT)
        exec(router, ['nft', '-f', nft])
        const conf = join(upnpDir, `${home}.conf`)
        writeFileSync(conf, [
          'ext_ifname=wan', 'listening_ip=lan', 'port=0',
          `enable_upnp=${opts.natpmpOnly === true ? 'no' : 'yes'}`, 'enable_natpmp=yes', 'secure_mode=yes', 'system_uptime=no',
          `uuid=00000000-0000-4000-8000-${String(h + 1).padStart(12, '0')}`, 'serial=p2pbak-lab', 'model_number=1',
          'upnp_table_name=miniupnpd', 'upnp_nat_table_name=miniupnpd', 'upnp_forward_chain=miniupnpd',
          'upnp_nat_chain=prerouting_miniupnpd', 'upnp_nat_postrouting_chain=postrouting_miniupnpd',
          // the home's own hosts, ports above 1023 only; nobody else
          `allow 1024-65535 ${lanNet}.0/24 1024-65535`, 'deny 0-65535 0.0.0.0/0 0-65535', ''
        ].join('\n'))
        const log = openSync(join(upnpDir, `${home}.log`), 'a')
        const d = spawnIn(router, ['miniupnpd', '-d', '-f', conf, '-P', join(upnpDir, `${home}.pid`)], { stdio: ['ignore', log, log] })
        closeSync(log)
        daemons.push(d)
        // ready once it listens for SSDP (NAT-PMP only: on udp 5351) on the LAN side (or dead: say why)
        const port = opts.natpmpOnly === true ? ':5351' : ':1900'
        const deadline = Date.now() + 10_000
        for (;;) {
          if (d.exitCode !== null) throw new Error(`miniupnpd on router ${home} exited ${d.exitCode}: ${readFileSync(join(upnpDir, `${home}.log`), 'utf8').slice(-2000)}`)
          if (exec(router, ['ss', '-uln']).includes(port)) break
          if (Date.now() > deadline) throw new Error(`miniupnpd on router ${home} did not listen on udp ${port.slice(1)} within 10 s: ${readFileSync(join(upnpDir, `${home}.log`), 'utf8').slice(-2000)}`)
          await new Promise(resolve => setTimeout(resolve, 50))
        }
      }
      for (const [j, name] of members.entries()) {
        const pid = await add(name)
        const ip = `${lanNet}.${2 + j}`
        sh(router, `ip link add l${j} type veth peer name eth0; ip link set eth0 netns ${pid}; ip link set l${j} master lan up`)
        sh(name, `ip link set lo up; ip addr add ${ip}/24 dev eth0; ip link set eth0 up; ip route add default via ${lanNet}.1`)
        hosts[name] = { name, ip, home, pid }
      }
    }
  } catch (err: unknown) {
    await close()
    throw err
  }
  return {
    hosts,
    routers,
    exec,
    spawnIn,
    move: (name, home) => {
      const host = hosts[name]
      if (host === undefined) throw new Error(`cannot move ${name}: no such host`)
      const pid = pids.get(name) as number
      const n = ++moved
      sh(name, 'ip link del eth0')
      if (home === PUBLIC) {
        // onto the public segment, with an address of its own (an office, a university network)
        const ip = `${PUBLIC_NET}.${100 + n}`
        sh('internet', `ip link add m${n} type veth peer name eth0; ip link set eth0 netns ${pid}; ip link set m${n} master br0 up`)
        sh(name, `ip addr add ${ip}/24 dev eth0; ip link set eth0 up`)
        hosts[name] = { ...host, ip, home: undefined }
        return
      }
      const router = routers[home]
      if (router === undefined) throw new Error(`cannot move ${name} to home ${home}`)
      const lanNet = router.lanIp.slice(0, router.lanIp.lastIndexOf('.'))
      const ip = `${lanNet}.${100 + n}`
      sh(`router-${home}`, `ip link add m${n} type veth peer name eth0; ip link set eth0 netns ${pid}; ip link set m${n} master lan up`)
      sh(name, `ip addr add ${ip}/24 dev eth0; ip link set eth0 up; ip route add default via ${router.lanIp}`)
      hosts[name] = { ...host, ip, home }
    },
    portMappings: (home) => exec(`router-${home}`, ['nft', 'list', 'chain', 'inet', 'miniupnpd', 'prerouting_miniupnpd']).split('\n').map(l => l.trim()).filter(l => l.includes('dnat')),
    upnpLog: (home) => upnpDir === undefined ? '' : readFileSync(join(upnpDir, `${home}.log`), 'utf8'),
    routerCounters: (home) => exec(`router-${home}`, ['sh', '-c', 'iptables -L -n -v -x; iptables -t nat -L POSTROUTING -n -v -x']),
    close
  }
}
