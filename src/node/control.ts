/**
 * The daemon's control socket, HOME/daemon.sock (the home is mode 0700, so only its user reaches
 * it). A command started while the daemon runs is handed to it and runs there, with the daemon's
 * unlocked keys and running node:
 *   client -> daemon: one JSON line {"argv": [...], "env": {...}, "cwd": "/dir/of/the/caller"},
 *                     then possibly {"cancel": true} (the user pressed Ctrl-C)
 *   daemon -> client: JSON lines {"out": base64} | {"err": base64}, then {"exit": code}
 * Commands run one at a time, in arrival order. A cancel, or the client going away before the exit
 * line, aborts the command's signal (a command still queued does not start: exit 130).
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net'
import { chmod, unlink } from 'node:fs/promises'
import { StringDecoder } from 'node:string_decoder'
import { PassThrough, type Writable } from 'node:stream'
import type { Logger } from '../util/log.js'
import { AbortedError, errorMessage } from '../errors.js'

/** Bytes of command output per line on the socket (base64 makes 4/3 of it; a client reads lines up to 2^20 characters). */
const RELAY_PIECE_BYTES = 256 * 1024

/**
 * The logger loads on first use: the CLI side of a forwarded command (forwardToDaemon) is on every
 * command's start-up path, and the logging library with its formatters costs more than the rest of it.
 */
let logger: Logger | undefined
async function controlLog (): Promise<Logger> {
  logger ??= (await import('../util/log.js')).scopedLogger('control')
  return logger
}

export interface ControlIo {
  stdout: Writable
  stderr: Writable
  stdin: PassThrough
  env: Record<string, string | undefined>
  cwd: string | undefined
  /** aborted when the client cancels or goes away */
  signal: AbortSignal
}

/** The exit code of a command cancelled before it started (as for SIGINT). */
export const CANCELLED_EXIT = 130
export type RunCommand = (argv: string[], io: ControlIo) => Promise<number>

export interface ControlServer {
  server: Server
  /** Runs work in the same queue as the commands, so the daemon's own rounds never overlap one. */
  enqueue: <T>(work: () => Promise<T>) => Promise<T>
  close: () => Promise<void>
  /** Settles when everything queued so far has finished. */
  idle: () => Promise<void>
  /** Calls `listener` each time a user's command is queued; returns the function that stops it. */
  onCommand: (listener: () => void) => () => void
  /** How many users' commands are queued and not started yet. */
  waiting: () => number
}

/** Whether a daemon answers on this socket. */
export async function daemonAnswers (socketPath: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = createConnection(socketPath)
    s.on('connect', () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
}

/**
 * A signal that aborts once a user's command is waiting behind the daemon's own work and `until`
 * (Date.now() ms) has passed: long work that may be cut off gives way to the user.
 */
export function commandWaitingAfter (control: ControlServer | undefined, until: number): { signal: AbortSignal, done: () => void } {
  const ac = new AbortController()
  let timer: ReturnType<typeof setTimeout> | undefined
  const giveWay = (): void => { ac.abort(new AbortedError('a command is waiting')) }
  const onCommand = (): void => {
    const left = until - Date.now()
    if (left <= 0) giveWay()
    else timer ??= setTimeout(giveWay, left)
  }
  const off = control?.onCommand(onCommand)
  if ((control?.waiting() ?? 0) > 0) onCommand()
  return { signal: ac.signal, done: () => { off?.(); clearTimeout(timer) } }
}

export async function startControlServer (socketPath: string, run: RunCommand): Promise<ControlServer> {
  const log = await controlLog()
  await unlink(socketPath).catch((err: unknown) => { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log('an old %s not removed: %s', socketPath, errorMessage(err)) })
  let queue: Promise<unknown> = Promise.resolve()
  const enqueue = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work)
    queue = next.catch(() => undefined) // its caller gets the error through `next`; the queue only orders
    return next
  }
  const open = new Set<Socket>()
  const commandListeners = new Set<() => void>()
  let waiting = 0
  const server = createServer((sock) => {
    open.add(sock)
    const cancel = new AbortController()
    let finished = false
    sock.on('close', () => {
      open.delete(sock)
      // the client went away (Ctrl-C twice, a killed shell): nobody waits for the result
      if (!finished) cancel.abort(new Error('the client went away'))
    })
    let started = false
    const onLine = (line: string): boolean => {
      let msg: { argv?: unknown, env?: unknown, cwd?: unknown, cancel?: unknown }
      try { msg = JSON.parse(line) as typeof msg } catch (err: unknown) { log('a control request is not JSON: %s', errorMessage(err)); return false }
      if (started) {
        if (msg.cancel === true) cancel.abort(new Error('cancelled by the user'))
        return true
      }
      started = true
      const cwd = typeof msg.cwd === 'string' ? msg.cwd : undefined
      const argv = Array.isArray(msg.argv) ? msg.argv.map(String) : []
      const env = typeof msg.env === 'object' && msg.env !== null ? msg.env as Record<string, string> : {}
      const send = (obj: object): void => { if (!sock.destroyed) sock.write(JSON.stringify(obj) + '\n') }
      const stdout = new PassThrough()
      const stderr = new PassThrough()
      // backpressure: a client that reads slowly (a `dump` piped into a slow disk) pauses the
      // command's output instead of letting the daemon buffer it all
      const relay = (stream: PassThrough, key: 'out' | 'err'): void => {
        stream.on('data', (whole: Buffer) => {
          if (sock.destroyed) return
          // one line per piece of at most RELAY_PIECE_BYTES: the client refuses a longer line (readLines)
          let ok = true
          for (let o = 0; o < whole.byteLength; o += RELAY_PIECE_BYTES) {
            ok = sock.write(JSON.stringify({ [key]: whole.subarray(o, o + RELAY_PIECE_BYTES).toString('base64') }) + '\n')
          }
          if (!ok) {
            stream.pause()
            const resume = (): void => { sock.off('drain', resume); sock.off('close', resume); stream.resume() }
            sock.on('drain', resume)
            // a client gone for good: the output drains into nothing (and the command is cancelled)
            sock.on('close', resume)
          }
        })
      }
      relay(stdout, 'out')
      relay(stderr, 'err')
      waiting++
      for (const listener of commandListeners) listener()
      void enqueue(async () => {
        waiting--
        let code = CANCELLED_EXIT
        if (!cancel.signal.aborted) {
          code = 1
          try {
            code = await run(argv, { stdout, stderr, stdin: new PassThrough(), env, cwd, signal: cancel.signal })
          } catch (err: unknown) {
            // main() turns every error into an exit code: this is a bug, answered with exit 1
            log.error('command %s threw outside main: %s', argv[0] ?? '', errorMessage(err))
          }
        }
        finished = true
        send({ exit: code })
        sock.end()
      })
      return true
    }
    readLines(sock, onLine)
    sock.on('error', () => {})
  })
  // the socket is made the owner's alone from its first moment (a umask of 0 or 002 would leave it
  // open to others until the chmod below, and a connection accepted then stays open); the home is
  // 0700 too (NodeService checks, home-guard.ts)
  const umask = process.umask(0o077)
  try {
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, () => resolve()) })
  } finally {
    process.umask(umask)
  }
  await chmod(socketPath, 0o600)
  return {
    server,
    enqueue,
    idle: async () => { await queue },
    waiting: () => waiting,
    onCommand: (listener) => { commandListeners.add(listener); return () => { commandListeners.delete(listener) } },
    close: async () => {
      // a command still running (or stuck) must not keep the daemon from stopping
      for (const sock of open) sock.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await unlink(socketPath).catch((err: unknown) => { log('%s not removed: %s', socketPath, errorMessage(err)) })
    }
  }
}

/**
 * Runs the command in the daemon if one listens on the socket; undefined when none does. When
 * `signal` aborts (Ctrl-C), the daemon is asked to cancel the command, and its exit code (130 once it
 * has stopped) is still awaited.
 */
export async function forwardToDaemon (socketPath: string, argv: readonly string[], env: Record<string, string | undefined>, out: Writable, err: Writable, cwd?: string, signal?: AbortSignal): Promise<number | undefined> {
  return await new Promise((resolve) => {
    const sock = createConnection(socketPath)
    let connected = false
    let code: number | undefined
    const onAbort = (): void => { if (connected && !sock.destroyed) sock.write(JSON.stringify({ cancel: true }) + '\n') }
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort)
      resolve(connected ? (code ?? 1) : undefined)
    }
    sock.on('connect', () => {
      connected = true
      const pass: Record<string, string> = {}
      for (const k of ['P2PBAK_KDF', 'TZ']) { const v = env[k]; if (v !== undefined) pass[k] = v }
      sock.write(JSON.stringify({ argv, env: pass, cwd }) + '\n')
      if (signal?.aborted === true) onAbort()
      else signal?.addEventListener('abort', onAbort, { once: true })
    })
    readLines(sock, (line) => {
      try {
        const msg = JSON.parse(line) as { out?: string, err?: string, exit?: number }
        if (msg.out !== undefined) out.write(Buffer.from(msg.out, 'base64'))
        if (msg.err !== undefined) err.write(Buffer.from(msg.err, 'base64'))
        if (typeof msg.exit === 'number') code = msg.exit
      } catch (e: unknown) {
        const why = errorMessage(e)
        void controlLog().then(log => { log('the daemon sent a line that is not JSON: %s', why) })
      }
      return true
    })
    sock.on('error', done)
    sock.on('close', done)
  })
}

/**
 * Calls `onLine` for each LF-ended line the socket sends (UTF-8). The socket is destroyed when
 * `onLine` returns false, or when more than 2^20 characters arrive without an LF.
 */
function readLines (sock: Socket, onLine: (line: string) => boolean): void {
  let buf = ''
  // a character cut between two reads is joined, not turned into U+FFFD
  const text = new StringDecoder('utf8')
  sock.on('data', (d: Buffer) => {
    buf += text.write(d)
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (!onLine(line)) { sock.destroy(); return }
    }
    if (buf.length > 1 << 20) sock.destroy()
  })
}
