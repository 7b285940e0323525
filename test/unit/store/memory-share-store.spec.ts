import assert from 'node:assert/strict'
import { MemoryShareStore } from '../../../src/store/index.js'
import { collect, rejectsWithCode, seededBytes, shareStoreCompliance, testRef } from '../../compliance/share-store.js'

shareStoreCompliance('MemoryShareStore', async () => {
  const store = new MemoryShareStore()
  return { store, teardown: async () => { await store.close() } }
})

describe('MemoryShareStore test helpers', () => {
  it('corrupt flips one byte that get then returns, leaving the size alone', async () => {
    const store = new MemoryShareStore()
    const data = seededBytes(1, 100)
    await store.put(testRef(1), data)
    store.corrupt(testRef(1), 42)
    const got = await store.get(testRef(1))
    assert.equal(got.byteLength, 100)
    assert.equal(got[42], (data[42] as number) ^ 0xff)
    assert.deepEqual(got.subarray(0, 42), data.subarray(0, 42))
    assert.deepEqual(got.subarray(43), data.subarray(43))
  })

  it('corrupt refuses an absent share or an offset outside it', async () => {
    const store = new MemoryShareStore()
    assert.throws(() => { store.corrupt(testRef(2), 0) }, { code: 'ERR_NOT_FOUND' })
    await store.put(testRef(2), seededBytes(2, 10))
    assert.throws(() => { store.corrupt(testRef(2), 10) }, { code: 'ERR_FORMAT' })
    assert.throws(() => { store.corrupt(testRef(2), -1) }, { code: 'ERR_FORMAT' })
  })

  it('remove loses a share as a failing disk would, and tolerates absence', async () => {
    const store = new MemoryShareStore()
    await store.put(testRef(3, 0), seededBytes(3, 10))
    await store.put(testRef(3, 1), seededBytes(4, 10))
    store.remove(testRef(3, 0))
    store.remove(testRef(9, 9))
    await rejectsWithCode(store.get(testRef(3, 0)), 'ERR_NOT_FOUND')
    assert.equal((await collect(store.list())).length, 1)
  })

  it('each instance has its own id and contents', async () => {
    const a = new MemoryShareStore()
    const b = new MemoryShareStore()
    assert.notEqual(a.id, b.id)
    assert.match(a.id, /^memory:/)
    await a.put(testRef(4), seededBytes(1, 1))
    assert.equal(await b.has(testRef(4)), false)
  })
})
