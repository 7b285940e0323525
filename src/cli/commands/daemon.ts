/** `daemon [--listen MULTIADDR]...`: run the node; serve the control socket; write HOME/node.json. */
import type { Command } from 'commander'
import { join } from 'node:path'
import { unlink } from 'node:fs/promises'
import { openSession } from '../../node/session.js'
import { daemonAnswers, startControlServer } from '../../node/control.js'
import { parseDuration } from '../../repo/index.js'
import { InvalidArgumentError, LockedError } from '../../errors.js'
import { writeFileAtomic } from '../../store/index.js'
import { print, printJson } from '../io.js'
import type { CommandContext, DaemonServices } from '../context.js'

const collect = (v: string, prev: string[]): string[] => [...prev, v]

export function registerDaemon (program: Command, ctx: () => CommandContext, runInDaemon: (argv: string[], io: import('../io.js').CliIo, services: DaemonServices) => Promise<number>): void {
  program.command('daemon')
    .description('run this node: serve friends, take commands of this home over HOME/daemon.sock')
    .option('--listen <multiaddr>', 'address to listen on (repeatable); default /ip4/0.0.0.0/tcp/4737', collect, [])
    .option('--mdns', 'find friends on the local network with mDNS')
    .option('--refresh <interval>', 'how often to reconnect to members and refresh their offers: milliseconds, or a duration like 1h', '30000')
    .action(async (opts: { listen: string[], mdns?: boolean, refresh: string }) => {
      const c = ctx()
      const refreshMs = /^\d+$/.test(opts.refresh) ? Number(opts.refresh) : parseDuration(opts.refresh)
      if (!Number.isFinite(refreshMs) || refreshMs < 100) throw new InvalidArgumentError(`--refresh takes milliseconds (at least 100) or a duration, got "${opts.refresh}"`)
      const listen = opts.listen.length > 0 ? opts.listen : ['/ip4/0.0.0.0/tcp/4737']
      if (await daemonAnswers(join(c.homeDir, 'daemon.sock'))) throw new LockedError(`a daemon already runs for ${c.homeDir}; stop it first`)
      const { home, net } = await openSession(c.homeOptions(), { force: true, listen, mdns: opts.mdns === true, dht: true })
      if (net === undefined) throw new Error('unreachable: a forced session has a node')
      home.shared = true
      const services: DaemonServices = { home, net }
      const nodeJson = join(c.homeDir, 'node.json')
      const sock = join(c.homeDir, 'daemon.sock')
      await writeFileAtomic(nodeJson, JSON.stringify({ peerId: net.peerId, addrs: net.addrs(), pid: process.pid }, null, 2) + '\n')
      const control = await startControlServer(sock, async (argv, io) => {
        // each command sees the group as it is now, not packs decoded for an earlier command
        home.repo.packs.dropCaches?.()
        // relative paths mean the caller's directory; commands run one at a time, so this is safe
        const before = process.cwd()
        try {
          if (io.cwd !== undefined) process.chdir(io.cwd)
          return await runInDaemon(argv, { ...io, env: { ...io.env, P2PBAK_HOME: c.homeDir } }, services)
        } finally {
          process.chdir(before)
        }
      })
      const tick = async (): Promise<void> => {
        try {
          await net.refresh()
          if (net.roster === null) return
          home.useGroup(net.directory)
          // backups from before the group (or from while no friend answered) move into the group;
          // a round has a budget, so a half-dead peer never keeps the user's commands waiting long
          await home.group?.placeLocalPacks({ signal: AbortSignal.timeout(20_000) })
          await runScheduledPublish(net, services, runInDaemon, c.homeDir)
        } catch {
          // a failed round is retried at the next tick
        }
      }
      // at most one round queued or running: rounds slower than the interval must not pile up in
      // front of the user's commands
      let roundPending = false
      const timer = setInterval(() => {
        if (roundPending) return
        roundPending = true
        void control.enqueue(tick).finally(() => { roundPending = false })
      }, refreshMs)
      if (c.json) printJson(c.io, { peerId: net.peerId, addrs: net.addrs() })
      else print(c.io, `p2pbak daemon: peer ${net.peerId}\n  listening on ${net.addrs().join('\n  listening on ')}\n  control socket ${sock}`)
      await new Promise<void>((resolve) => {
        if (c.io.signal === undefined) return
        if (c.io.signal.aborted) resolve()
        c.io.signal.addEventListener('abort', () => resolve(), { once: true })
      })
      clearInterval(timer)
      await control.close()
      await unlink(nodeJson).catch(() => {})
      await home.closeNow()
      if (!c.json) print(c.io, 'p2pbak daemon stopped')
    })
}

/** Runs the `publish` backup when it is due (roles.publish: paths, every, last run). */
async function runScheduledPublish (
  net: DaemonServices['net'], services: DaemonServices,
  run: (argv: string[], io: import('../io.js').CliIo, services: DaemonServices) => Promise<number>, homeDir: string
): Promise<void> {
  const p = net.state.file.roles.publish
  if (p === null || p.paths.length === 0) return
  const now = Date.now()
  if (p.lastRunMs !== undefined && now - p.lastRunMs < p.everyMs) return
  p.lastRunMs = now
  await net.state.save()
  const { PassThrough } = await import('node:stream')
  const sink = new PassThrough()
  sink.resume()
  await run(['backup', ...p.paths, '--tag', 'published'], { stdout: sink, stderr: sink, stdin: new PassThrough(), env: { P2PBAK_HOME: homeDir } }, services)
}
