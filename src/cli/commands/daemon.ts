/** `daemon [--listen MULTIADDR]...`: run the node; serve the control socket; write HOME/node.json. */
import type { Command } from 'commander'
import { join } from 'node:path'
import { unlink } from 'node:fs/promises'
import { openSession } from '../../node/session.js'
import { startControlServer } from '../../node/control.js'
import { writeFileAtomic } from '../../store/index.js'
import { print, printJson } from '../io.js'
import type { CommandContext, DaemonServices } from '../context.js'

const collect = (v: string, prev: string[]): string[] => [...prev, v]

export function registerDaemon (program: Command, ctx: () => CommandContext, runInDaemon: (argv: string[], io: import('../io.js').CliIo, services: DaemonServices) => Promise<number>): void {
  program.command('daemon')
    .description('run this node: serve friends, take commands of this home over HOME/daemon.sock')
    .option('--listen <multiaddr>', 'address to listen on (repeatable); default /ip4/0.0.0.0/tcp/4737', collect, [])
    .option('--mdns', 'find friends on the local network with mDNS')
    .option('--refresh <duration>', 'how often to reconnect to members and refresh their offers (ms)', '30000')
    .action(async (opts: { listen: string[], mdns?: boolean, refresh: string }) => {
      const c = ctx()
      const listen = opts.listen.length > 0 ? opts.listen : ['/ip4/0.0.0.0/tcp/4737']
      const { home, net } = await openSession(c.homeOptions(), { force: true, listen, mdns: opts.mdns === true, dht: true })
      if (net === undefined) throw new Error('unreachable: a forced session has a node')
      home.shared = true
      const services: DaemonServices = { home, net }
      const nodeJson = join(c.homeDir, 'node.json')
      const sock = join(c.homeDir, 'daemon.sock')
      await writeFileAtomic(nodeJson, JSON.stringify({ peerId: net.peerId, addrs: net.addrs(), pid: process.pid }, null, 2) + '\n')
      const server = await startControlServer(sock, async (argv, io) => {
        // each command sees the group as it is now, not packs decoded for an earlier command
        home.repo.packs.dropCaches?.()
        return await runInDaemon(argv, { ...io, env: { ...io.env, P2PBAK_HOME: c.homeDir } }, services)
      })
      const timer = setInterval(() => { void net.refresh().then(() => { if (net.roster !== null) home.useGroup(net.directory) }) }, Math.max(1000, Number(opts.refresh)))
      if (c.json) printJson(c.io, { peerId: net.peerId, addrs: net.addrs() })
      else print(c.io, `p2pbak daemon: peer ${net.peerId}\n  listening on ${net.addrs().join('\n  listening on ')}\n  control socket ${sock}`)
      await new Promise<void>((resolve) => {
        if (c.io.signal === undefined) return
        if (c.io.signal.aborted) resolve()
        c.io.signal.addEventListener('abort', () => resolve(), { once: true })
      })
      clearInterval(timer)
      await new Promise<void>(resolve => server.close(() => resolve()))
      await unlink(sock).catch(() => {})
      await home.closeNow()
      if (!c.json) print(c.io, 'p2pbak daemon stopped')
    })
}
