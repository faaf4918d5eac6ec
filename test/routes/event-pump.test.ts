import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { pumpEvents } from '../../src/routes/event-pump.js'
import type { PumpEnd } from '../../src/routes/event-pump.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import type { EventHandler } from '../../src/sse/event-stream.js'
import { send } from '../fixtures/http.js'
import { errorBody } from '../../src/errors.js'

const BROKEN = `data: ${JSON.stringify(errorBody('upstream_stream_error'))}\n\n`

/** Pumps `source` through `handler` into a real response; what the client read, and how it ended. */
async function pump (t: Test, source: AsyncIterable<Uint8Array>, handler: EventHandler): Promise<{ text: string, end: PumpEnd, errors: unknown[] }> {
  const errors: unknown[] = []
  let end: Promise<PumpEnd> | undefined
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const controller = new AbortController()
    end = pumpEvents(res, source, createEventStream(handler), {
      signal: controller.signal,
      abort: () => { controller.abort() },
      keepaliveMs: 0,
      complete: () => handler.complete,
      onUpstreamError: (err) => { errors.push(err) }
    }).done
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.close() })
  const { port } = server.address() as AddressInfo
  const { text } = await send(`http://127.0.0.1:${port}`, { path: '/' })
  return { text, end: await (end as Promise<PumpEnd>), errors }
}

/** Passes every event through; `flush` fails as a broken handler would. */
function failingFlush (error: Error): EventHandler {
  return {
    inspect: () => 'forward',
    onEvent: () => undefined,
    flush: () => { throw error },
    done: false,
    complete: false
  }
}

/** Yields `chunks`, then fails like an upstream connection reset; its iterator has no `return`. */
function breaking (chunks: string[], error: Error): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator] () {
      let i = 0
      return {
        async next () {
          if (i < chunks.length) return { done: false, value: new TextEncoder().encode(chunks[i++]) }
          throw error
        }
      }
    }
  }
}

t.test('a handler that fails again while the stream ends on an error still sends the error event', async (t) => {
  const reset = new Error('socket hang up')
  const flushFailed = new Error('flush failed')
  const { text, end, errors } = await pump(t, breaking(['data: one\n\n'], reset), failingFlush(flushFailed))
  t.equal(text, 'data: one\n\n' + BROKEN, 'the events before, then the error event')
  t.equal(end, 'upstream-error', 'ended as an upstream error')
  t.same(errors, [reset, flushFailed], 'both failures reported, the upstream one first')
})

t.test('a read whose events overflow the response buffer in one write does not stall the stream', async (t) => {
  // Just over the response's 64 KiB high-water mark per read: write() says to wait, yet
  // Node 24's uncork() hands all of it to the socket at once, and no 'drain' follows.
  // Waiting for one anyway hung every long stream.
  const event = `data: ${'x'.repeat(200)}\n\n`
  const reads = [...Array.from({ length: 5 }, () => event.repeat(Math.ceil(65 * 1024 / event.length))), 'data: [DONE]\n\n']
  async function * source (): AsyncGenerator<Uint8Array> {
    for (const read of reads) yield new TextEncoder().encode(read)
  }
  const passThrough: EventHandler = {
    inspect: () => 'forward',
    onEvent: () => undefined,
    flush: () => {},
    done: false,
    complete: true
  }
  const { text, end } = await pump(t, source(), passThrough)
  t.equal(end, 'eof', 'the pump reached the end of the source')
  t.equal(text, reads.join(''), 'every event arrived')
})

t.test('a client that stops reading holds the upstream read until the response drains', async (t) => {
  const event = `data: ${'x'.repeat(8 * 1024)}\n\n`
  const read = event.repeat(32)
  const reads = 128 // 32 MiB: more than the kernel buffers on both sides of a loopback connection
  let pulled = 0
  async function * source (): AsyncGenerator<Uint8Array> {
    for (; pulled < reads; pulled++) yield new TextEncoder().encode(read)
  }
  const handler: EventHandler = { inspect: () => 'forward', onEvent: () => undefined, flush: () => {}, done: false, complete: true }
  let end: Promise<PumpEnd> | undefined
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const controller = new AbortController()
    end = pumpEvents(res, source(), createEventStream(handler), {
      signal: controller.signal, abort: () => { controller.abort() }, keepaliveMs: 0, complete: () => true, onUpstreamError: () => {}
    }).done
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.close() })
  const { port } = server.address() as AddressInfo
  const res = await new Promise<http.IncomingMessage>((resolve) => { http.get({ host: '127.0.0.1', port, path: '/', agent: false }, resolve) })
  let received = 0
  await new Promise<void>((resolve) => res.once('data', (piece: Buffer) => { received += piece.length; res.pause(); resolve() }))
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.ok(pulled < reads, `while the client does not read, the source is not read to its end (${pulled} of ${reads} reads)`)
  res.on('data', (piece: Buffer) => { received += piece.length })
  res.resume()
  await new Promise((resolve) => res.once('end', resolve))
  t.equal(await end, 'eof', 'the pump reached the end once the client read again')
  t.equal(received, read.length * reads, 'every byte arrived')
})
