/**
 * Promise.withResolvers for Node 20 (V8 11.3 lacks it; libp2p 3 and its dependencies call it).
 * Loaded before any libp2p module: first import of bin/p2pbak.js, and a mocha node-option in tests.
 */
interface Resolvers<T> { promise: Promise<T>, resolve: (value: T | PromiseLike<T>) => void, reject: (reason?: unknown) => void }
type WithResolvers = <T>() => Resolvers<T>

const P = Promise as unknown as { withResolvers?: WithResolvers }
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T> (): Resolvers<T> {
    let resolve!: Resolvers<T>['resolve']
    let reject!: Resolvers<T>['reject']
    const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

export {}
