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
 * Needs Linux, root, `unshare`, `nsenter`, `setpriv` (util-linux), `ip` (iproute2) and `iptables`:
 * {@link natLabUnavailable} says why not when one is missing.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readlinkSync } from 'node:fs'

export interface NatLabOptions {
  /** hosts on the public segment (R, a stranger, …). @default ['r'] */
  publicHosts?: string[]
  /** homes, each behind its own router, with the names of their hosts. @default { a: ['a'], b: ['b'] } */
  homes?: Record<string, string[]>
  /** MASQUERADE --random-fully: every outgoing connection gets a random public port (hole punching fails). @default false */
  symmetric?: boolean
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
   */
  move: (host: string, home: string) => void
  /** iptables counters of a router (for the test log) */
  routerCounters: (home: string) => string
  /** kills every holder process: the namespaces, links and rules vanish with them */
  close: () => Promise<void>
}

const PUBLIC_NET = '198.18.0'
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
  const pids = new Map<string, number>()
  const hosts: Record<string, LabHost> = {}
  const routers: NatLab['routers'] = {}
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
    await Promise.all(holders.map(async h => {
      if (h.exitCode !== null || h.signalCode !== null) return
      const gone = new Promise(resolve => h.once('exit', resolve))
      h.kill('SIGKILL')
      await gone
    }))
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
        'iptables -A FORWARD -i wan -j DROP'
      ].join('; '))
      routers[home] = { wanIp, lanIp: `${lanNet}.1`, pid: rpid }
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
    spawnIn: (host, argv, spawnOpts = {}) => {
      const [cmd, ...args] = argv
      if (cmd === undefined) throw new Error('spawnIn needs a command')
      return spawn('nsenter', [...nsArgs(host), 'setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args], spawnOpts)
    },
    move: (name, home) => {
      const host = hosts[name]
      const router = routers[home]
      if (host === undefined || router === undefined || host.home === undefined) throw new Error(`cannot move ${name} to home ${home}`)
      const pid = pids.get(name) as number
      const lanNet = router.lanIp.slice(0, router.lanIp.lastIndexOf('.'))
      const ip = `${lanNet}.${100 + ++moved}`
      sh(name, 'ip link del eth0')
      sh(`router-${home}`, `ip link add m${moved} type veth peer name eth0; ip link set eth0 netns ${pid}; ip link set m${moved} master lan up`)
      sh(name, `ip addr add ${ip}/24 dev eth0; ip link set eth0 up; ip route add default via ${router.lanIp}`)
      hosts[name] = { ...host, ip, home }
    },
    routerCounters: (home) => exec(`router-${home}`, ['sh', '-c', 'iptables -L -n -v -x; iptables -t nat -L POSTROUTING -n -v -x']),
    close
  }
}
