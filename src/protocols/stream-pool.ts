/**
 * Streams kept open between exchanges with one peer, for a protocol whose server answers one request
 * after another on a stream (docs/protocols/framing.md §2.1). Opening a stream costs a round trip of
 * protocol negotiation on both sides and a fresh flow-control window; a client that sends many
 * requests to one peer (a share in parts) takes an idle stream here instead.
 *
 * Only streams whose last exchange ended cleanly are given back; a stream is handed out once (by
 * `take`) and is either given back or dropped by its user. Idle streams are closed after `idleMs`,
 * before the server's own idle limit, so a request rarely meets a stream the server just closed.
 */
import type { Stream } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('stream-pool')

export interface StreamPoolInit {
  /** An idle stream is closed after this many ms. */
  idleMs: number
  /** Idle streams kept at most; one given back beyond this is closed. */
  maxIdle: number
}

/** True while both ends of `stream` can still send: the next request can go on it. */
export function reusable (stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.remoteWriteStatus === 'writable' &&
    (stream.readStatus === 'readable' || stream.readStatus === 'paused')
}

export class StreamPool<T extends { readonly stream: Stream }> {
  private readonly idle: Array<{ entry: T, timer: ReturnType<typeof setTimeout> }> = []
  private closed = false

  constructor (private readonly init: StreamPoolInit) {}

  /** The most recently used idle stream that can still carry a request, or undefined. */
  take (): T | undefined {
    for (let x = this.idle.pop(); x !== undefined; x = this.idle.pop()) {
      clearTimeout(x.timer)
      if (reusable(x.entry.stream)) return x.entry
      closeQuietly(x.entry.stream, 'a pooled stream the peer closed')
    }
    return undefined
  }

  /** Keeps `entry` for the next exchange, or closes its stream when it cannot be reused or the pool is full. */
  give (entry: T): void {
    if (this.closed || this.idle.length >= this.init.maxIdle || !reusable(entry.stream)) {
      closeQuietly(entry.stream, 'a stream not kept')
      return
    }
    const x = {
      entry,
      timer: setTimeout(() => {
        const i = this.idle.indexOf(x)
        if (i >= 0) this.idle.splice(i, 1)
        closeQuietly(entry.stream, 'an idle stream')
      }, this.init.idleMs)
    }
    x.timer.unref?.()
    this.idle.push(x)
  }

  /** Idle streams now (for tests and diagnostics). */
  get size (): number {
    return this.idle.length
  }

  /** Closes every idle stream; streams given back later are closed at once. */
  close (): void {
    this.closed = true
    for (const x of this.idle.splice(0)) {
      clearTimeout(x.timer)
      closeQuietly(x.entry.stream, 'a pooled stream at close')
    }
  }
}

/** Closes `stream`, aborting it when the close fails (logged). */
export function closeQuietly (stream: Stream, what: string): void {
  stream.close().catch((err: unknown) => {
    log('closing %s failed (%s); aborting it', what, errorMessage(err))
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  })
}
