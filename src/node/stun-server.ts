/**
 * The STUN responder a member with a public address runs for its friends (docs/network.md §15.7):
 * UDP on the port number of its TCP listen address, answering Binding requests (protocols/stun.ts)
 * so that a friend behind NAT learns its public address and port for WebRTC hole punching. It tells
 * anyone who asks only what they could see themselves, answers at most `maxPerSecond` requests a
 * second in all (a reply is at most 2.6 times its request: no use for amplification at that rate),
 * and ignores everything that is not a Binding request.
 */
import { createSocket, type Socket } from 'node:dgram'
import { errorMessage } from '../errors.js'
import { bindingRequestId, bindingResponse } from '../protocols/stun.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('stun')

export interface StunServerOptions {
  port: number
  /** the IPv4 address to bind. @default '0.0.0.0' */
  host?: string
  /** answers a second, all askers together. @default 200 */
  maxPerSecond?: number
}

export class StunServer {
  private answeredThisSecond = 0
  private second = 0
  /** Binding requests answered since start */
  answered = 0

  private constructor (private readonly socket: Socket, private readonly maxPerSecond: number) {}

  /** Binds the port; throws when it is taken (the caller logs it and runs without STUN). */
  static async start (opts: StunServerOptions): Promise<StunServer> {
    const socket = createSocket({ type: 'udp4', reuseAddr: false })
    const server = new StunServer(socket, opts.maxPerSecond ?? 200)
    socket.on('message', (msg, from) => { server.onMessage(msg, from.address, from.port) })
    socket.on('error', (err) => { log.error('STUN socket: %s', errorMessage(err)) })
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => { reject(err) }
      socket.once('error', fail)
      socket.bind(opts.port, opts.host ?? '0.0.0.0', () => { socket.off('error', fail); resolve() })
    })
    log('answering STUN Binding requests on udp %s:%d', opts.host ?? '0.0.0.0', opts.port)
    return server
  }

  get port (): number { return this.socket.address().port }

  private onMessage (msg: Buffer, address: string, port: number): void {
    const id = bindingRequestId(msg)
    if (id === undefined) return
    const second = Math.floor(Date.now() / 1000)
    if (second !== this.second) { this.second = second; this.answeredThisSecond = 0 }
    if (this.answeredThisSecond >= this.maxPerSecond) return
    this.answeredThisSecond++
    this.answered++
    this.socket.send(bindingResponse(id, address, port), port, address, (err) => {
      if (err !== null) log('STUN answer to %s:%d not sent: %s', address, port, errorMessage(err))
    })
  }

  async stop (): Promise<void> {
    await new Promise<void>(resolve => { this.socket.close(() => { resolve() }) })
  }
}
