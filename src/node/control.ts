/**
 * The daemon's control socket, HOME/daemon.sock (the home is mode 0700, so only its user reaches
 * it). A command started while the daemon runs is handed to it and runs there, with the daemon's
 * unlocked keys and running node:
 *   client -> daemon: one JSON line {"argv": [...], "env": {...}, "cwd": "/dir/of/the/caller"}
 *   daemon -> client: JSON lines {"out": base64} | {"err": base64}, then {"exit": code}
 * Commands run one at a time, in arrival order.
 */
import { createServer, createConnection, type Server } from 'node:net'
import { unlink } from 'node:fs/promises'
import { PassThrough, type Writable } from 'node:stream'

export interface ControlIo { stdout: Writable, stderr: Writable, stdin: PassThrough, env: Record<string, string | undefined>, cwd: string | undefined }
export type RunCommand = (argv: string[], io: ControlIo) => Promise<number>

export interface ControlServer {
  server: Server
  /** Runs work in the same queue as the commands, so the daemon's own rounds never overlap one. */
  enqueue: <T>(work: () => Promise<T>) => Promise<T>
  close: () => Promise<void>
  /** Settles when everything queued so far has finished. */
  idle: () => Promise<void>
}

/** Whether a daemon answers on this socket. */
export async function daemonAnswers (socketPath: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = createConnection(socketPath)
    s.on('connect', () => { s.destroy(); resolve(true) })
    s.on('error', () => resolve(false))
  })
}

export async function startControlServer (socketPath: string, run: RunCommand): Promise<ControlServer> {
  await unlink(socketPath).catch(() => {})
  let queue: Promise<unknown> = Promise.resolve()
  const enqueue = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work)
    queue = next.catch(() => {})
    return next
  }
  const open = new Set<import('node:net').Socket>()
  const server = createServer((sock) => {
    open.add(sock)
    sock.on('close', () => open.delete(sock))
    let buf = ''
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8')
      const nl = buf.indexOf('\n')
      if (nl < 0) { if (buf.length > 1 << 20) sock.destroy(); return }
      sock.off('data', onData)
      let req: { argv?: unknown, env?: unknown, cwd?: unknown }
      try { req = JSON.parse(buf.slice(0, nl)) as { argv?: unknown, env?: unknown, cwd?: unknown } } catch { sock.destroy(); return }
      const cwd = typeof req.cwd === 'string' ? req.cwd : undefined
      const argv = Array.isArray(req.argv) ? req.argv.map(String) : []
      const env = typeof req.env === 'object' && req.env !== null ? req.env as Record<string, string> : {}
      const send = (obj: object): void => { if (!sock.destroyed) sock.write(JSON.stringify(obj) + '\n') }
      const stdout = new PassThrough()
      const stderr = new PassThrough()
      stdout.on('data', (b: Buffer) => send({ out: b.toString('base64') }))
      stderr.on('data', (b: Buffer) => send({ err: b.toString('base64') }))
      void enqueue(async () => {
        let code = 1
        try { code = await run(argv, { stdout, stderr, stdin: new PassThrough(), env, cwd }) } catch {}
        send({ exit: code })
        sock.end()
      })
    }
    sock.on('data', onData)
    sock.on('error', () => {})
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(socketPath, () => resolve()) })
  return {
    server,
    enqueue,
    idle: async () => { await queue },
    close: async () => {
      // a command still running (or stuck) must not keep the daemon from stopping
      for (const sock of open) sock.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await unlink(socketPath).catch(() => {})
    }
  }
}

/** Runs the command in the daemon if one listens on the socket; undefined when none does. */
export async function forwardToDaemon (socketPath: string, argv: readonly string[], env: Record<string, string | undefined>, out: Writable, err: Writable, cwd?: string): Promise<number | undefined> {
  return await new Promise((resolve) => {
    const sock = createConnection(socketPath)
    let connected = false
    let buf = ''
    let code: number | undefined
    sock.on('connect', () => {
      connected = true
      const pass: Record<string, string> = {}
      for (const k of ['P2PBAK_KDF', 'TZ']) { const v = env[k]; if (v !== undefined) pass[k] = v }
      sock.write(JSON.stringify({ argv, env: pass, cwd }) + '\n')
    })
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8')
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        try {
          const msg = JSON.parse(line) as { out?: string, err?: string, exit?: number }
          if (msg.out !== undefined) out.write(Buffer.from(msg.out, 'base64'))
          if (msg.err !== undefined) err.write(Buffer.from(msg.err, 'base64'))
          if (typeof msg.exit === 'number') code = msg.exit
        } catch {}
      }
    })
    sock.on('error', () => { resolve(connected ? (code ?? 1) : undefined) })
    sock.on('close', () => { resolve(connected ? (code ?? 1) : undefined) })
  })
}
