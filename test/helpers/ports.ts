/** Loopback ports for tests whose nodes must keep their port across a restart. */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * A port for a node's listener that stays its own across restarts (a grid node behind its proxy, a
 * daemon killed and started again on its port). Taken below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range), which no port-0 listener and no outgoing connection of any process
 * is given: a port the kernel handed out once could go to another process's connection before the
 * node listens on it (suite run 40: EADDRINUSE while a benchmark's daemons ran beside the suite).
 * Bound once here to be sure nothing listens on it now.
 */
export async function stablePort (): Promise<number> {
  const low = ephemeralLow()
  // a process draws from a slice of the range chosen by its pid (mocha runs two test files at once,
  // in two processes: their pids share a slice one time in SLICES), and never hands out a port twice:
  // a node stopped for a while has no listener on its port, and another node of this process must
  // not take it meanwhile
  const width = Math.floor((low - 10_000) / SLICES)
  const first = 10_000 + (process.pid % SLICES) * width
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = first + Math.floor(Math.random() * width)
    if (!handedOut.has(port) && await bindable(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error(`no free port between ${first} and ${first + width}`)
}

const SLICES = 8
const handedOut = new Set<number>()

/** The lowest port of the kernel's ephemeral range (32768 on Linux by default). */
function ephemeralLow (): number {
  try {
    const low = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0] ?? '', 10)
    if (Number.isSafeInteger(low) && low > 11_000) return low
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  return 32_768
}

async function bindable (port: number): Promise<boolean> {
  const s = createServer()
  const ok = await new Promise<boolean>((resolve, reject) => {
    s.once('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false); else reject(err) })
    s.listen(port, '127.0.0.1', () => { resolve(true) })
  })
  if (ok) await new Promise<void>(resolve => s.close(() => resolve()))
  return ok
}
