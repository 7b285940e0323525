/** `daemon [--listen MULTIADDR]...`: run the node; serve the control socket; write HOME/node.json. */
import type { Command } from 'commander'
import { parseDuration } from '../../repo/retention.js'
import { InvalidArgumentError, errorMessage } from '../../errors.js'
import { ExitCode } from '../exit-codes.js'
import { print, printErr, printJson } from '../io.js'
import type { CommandContext, DaemonServices } from '../context.js'
import { SECRET_ENV } from '../../node/home-guard.js'
import type { Settings } from '../../node/group-state.js'
import { parseSize } from './group.js'
import { AUTO_COMMAND_LIMIT_BYTES, AUTO_LIMIT_BYTES, MIN_LIMIT_BYTES, startMemoryLimit, type MemoryLimit } from '../memory-limit.js'


function durationMs (text: string, flag: string, min: number): number {
  // a bare number stays milliseconds here (these flags took only that before durations existed)
  const ms = /^\d+$/.test(text) ? Number(text) : parseDuration(text)
  if (!Number.isFinite(ms) || ms < min) throw new InvalidArgumentError(`${flag} takes a duration like 30s, 10min, 12h or 3d (or a number of milliseconds), at least ${min} ms; got "${text}"`)
  return ms
}

function positive (text: string, flag: string): number {
  const v = Number(text)
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${flag} takes a positive number, got "${text}"`)
  return v
}

const collect = (v: string, prev: string[]): string[] => [...prev, v]

async function checkMultiaddr (text: string, flag: string): Promise<string> {
  const { multiaddr } = await import('@multiformats/multiaddr')
  try {
    return multiaddr(text).toString()
  } catch {
    throw new InvalidArgumentError(`${flag} takes a multiaddr such as /ip4/203.0.113.7/tcp/4737 or /dns4/home.example.org/tcp/4737, got "${text}"`)
  }
}

export function registerDaemon (program: Command, ctx: () => CommandContext, runInDaemon: (argv: string[], io: import('../io.js').CliIo, services: DaemonServices) => Promise<number>): void {
  program.command('daemon')
    .description('run this node: serve friends, take commands of this home over HOME/daemon.sock')
    .option('--listen <multiaddr>', 'address to listen on (repeatable); default /ip4/0.0.0.0/tcp/4737', collect, [])
    .option('--announce <multiaddr>', 'address friends should dial instead of the listen addresses, e.g. a forwarded public port /ip4/203.0.113.7/tcp/4737 (repeatable)', collect, [])
    .option('--mdns', 'find friends on the local network with mDNS')
    .option('--relay <mode>', 'relays among members: auto (serve with a public address, reserve behind NAT), serve, reserve, both or off', 'auto')
    .option('--no-port-mapping', 'behind NAT, do not ask the home router to forward a port to this node (UPnP, NAT-PMP)')
    .option('--refresh <interval>', 'how often to reconnect to members and refresh their offers: milliseconds, or a duration like 1h', '30000')
    .option('--audit-interval <duration>', 'time between two storage-proof challenges of each share (default 24h, or settings.auditIntervalMs in group.json)')
    .option('--offline-grace <duration>', 'how long a friend\'s node may be unreachable before its shares are rebuilt elsewhere (default 72h)')
    .option('--reciprocity <multiple>', 'refuse new shares from a person using more than MULTIPLE times what they give (default 2)')
    .option('--reciprocity-grace <size>', 'what everyone may use before giving anything is MULTIPLE times this (default 1GiB)')
    .option('--scrub-rate <size>', 'bytes per hour this node reads to check the shares it holds (default 2GiB)')
    .option('--limit-upload <KiB/s>', 'send shares and records at most this fast, in KiB per second (as restic\'s --limit-upload); default: no limit, or settings.limitUploadKiB in group.json')
    .option('--limit-download <KiB/s>', 'receive shares and records at most this fast, in KiB per second; default: no limit, or settings.limitDownloadKiB')
    .option('--max-memory <size>', 'a soft limit on the daemon\'s memory (resident size), e.g. 256MiB: near it the daemon frees what it no longer uses at once; auto: 128MiB while it only serves friends, 240MiB during its own commands; off: none', 'auto')
    .action(async (opts: { listen: string[], announce: string[], mdns?: boolean, relay: string, portMapping: boolean, refresh: string, auditInterval?: string, offlineGrace?: string, reciprocity?: string, reciprocityGrace?: string, scrubRate?: string, limitUpload?: string, limitDownload?: string, maxMemory: string }) => {
      const c = ctx()
      const maxMemory = memoryLimit(opts.maxMemory)
      const refreshMs = durationMs(opts.refresh, '--refresh', 100)
      const flags: Settings = {
        ...(opts.auditInterval !== undefined ? { auditIntervalMs: durationMs(opts.auditInterval, '--audit-interval', 100) } : {}),
        ...(opts.offlineGrace !== undefined ? { offlineGraceMs: durationMs(opts.offlineGrace, '--offline-grace', 0) } : {}),
        ...(opts.reciprocity !== undefined ? { reciprocityMultiple: positive(opts.reciprocity, '--reciprocity') } : {}),
        ...(opts.reciprocityGrace !== undefined ? { reciprocityGraceBytes: parseSize(opts.reciprocityGrace) } : {}),
        ...(opts.scrubRate !== undefined ? { scrubBytesPerHour: parseSize(opts.scrubRate) } : {}),
        ...(opts.limitUpload !== undefined ? { limitUploadKiB: positive(opts.limitUpload, '--limit-upload') } : {}),
        ...(opts.limitDownload !== undefined ? { limitDownloadKiB: positive(opts.limitDownload, '--limit-download') } : {})
      }
      const listen = opts.listen.length > 0 ? opts.listen : ['/ip4/0.0.0.0/tcp/4737']
      const announce: string[] = []
      for (const a of opts.announce) announce.push(await checkMultiaddr(a, '--announce'))
      const relay = opts.relay
      if (relay !== 'auto' && relay !== 'serve' && relay !== 'reserve' && relay !== 'both' && relay !== 'off') throw new InvalidArgumentError(`--relay takes auto, serve, reserve, both or off, got "${relay}"`)
      // the network stack loads only for the commands that run a node
      const { NodeService } = await import('../../node/service.js')
      const memory = await (await import('../process-memory.js')).tuneProcessMemory({ fixMmapThreshold: true })
      const limit = maxMemory !== 'off' ? await startLimit(maxMemory, c.io) : undefined
      const service = await NodeService.start({
        home: c.homeOptions(),
        network: { listen, ...(announce.length > 0 ? { announce } : {}), mdns: opts.mdns === true, relay, portMapping: opts.portMapping },
        refreshMs,
        settings: flags,
        runCommand: async (argv, io, services) => {
          // relative paths mean the caller's directory; commands run one at a time, so this is safe
          const before = process.cwd()
          // auto: a command of the daemon's own (a backup, a restore) gets the command limit
          if (maxMemory === 'auto') limit?.limit.lift()
          try {
            if (io.cwd !== undefined) {
              try {
                process.chdir(io.cwd)
              } catch (err: unknown) {
                // the caller's directory is one the daemon cannot enter: say so, run nothing
                printErr(io, `p2pbak: the daemon cannot enter ${io.cwd} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}), the directory this command was run in; run it from another directory, or stop the daemon to run it here`)
                return ExitCode.USAGE
              }
            }
            return await runInDaemon(argv, { ...io, env: { ...io.env, P2PBAK_HOME: c.homeDir } }, services)
          } finally {
            process.chdir(before)
            if (maxMemory === 'auto') limit?.limit.restore()
          }
        }
      })
      // the keys are unlocked: the passphrase leaves this process's environment (commands run in the
      // daemon and any child process never see it; bin/p2pbak.js hands us process.env itself)
      scrubSecrets(c.io.env)
      const { net } = service
      if (c.json) printJson(c.io, { peerId: net.peerId, addrs: net.addrs() })
      else print(c.io, `p2pbak daemon: peer ${net.peerId}\n  listening on ${net.addrs().join('\n  listening on ')}\n  control socket ${service.socketPath}`)
      await new Promise<void>((resolve) => {
        if (c.io.signal === undefined) return
        if (c.io.signal.aborted) resolve()
        c.io.signal.addEventListener('abort', () => resolve(), { once: true })
      })
      await service.stop()
      memory.stop()
      limit?.stop()
      if (!c.json) print(c.io, 'p2pbak daemon stopped')
    })
}

/** `--max-memory`: a size of at least MIN_LIMIT_BYTES, `auto` or `off`. */
function memoryLimit (text: string): number | 'auto' | 'off' {
  const t = text.trim().toLowerCase()
  if (t === 'auto' || t === 'off') return t
  const bytes = parseSize(text)
  if (bytes < MIN_LIMIT_BYTES) throw new InvalidArgumentError(`--max-memory takes a size of at least ${MIN_LIMIT_BYTES / 1048576}MiB (a daemon at rest takes about 96 MiB), auto or off, got "${text}"`)
  return bytes
}

/** The soft limit: auto is AUTO_LIMIT_BYTES and silent; a size the user gave warns when it cannot be kept. */
async function startLimit (setting: number | 'auto', io: import('../io.js').CliIo): Promise<{ limit: MemoryLimit, stop: () => void }> {
  const mem = (await import('../../backup/fsx.js')).nativeMemory
  const trim = (): void => { mem?.mallocTrim() }
  if (setting === 'auto') return startMemoryLimit(AUTO_LIMIT_BYTES, trim, undefined, { commandLimitBytes: AUTO_COMMAND_LIMIT_BYTES })
  return startMemoryLimit(setting, trim, (message) => { printErr(io, `p2pbak daemon: ${message}`) })
}

/** Removes the variables holding a secret (home-guard.ts SECRET_ENV) from the daemon's environment once the home is open. */
export function scrubSecrets (env: Record<string, string | undefined>): void {
  for (const k of SECRET_ENV) Reflect.deleteProperty(env, k)
}
