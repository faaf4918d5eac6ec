import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { DRAIN_MAX_BYTES, DRAIN_MAX_MS, pumpEvents } from '../../src/routes/event-pump.js'
import type { PumpEnd } from '../../src/routes/event-pump.js'
import { createEventStream } from '../../src/sse/event-stream.js'
import type { EventHandler } from '../../src/sse/event-stream.js'
import { send } from '../fixtures/http.js'
import { errorBody } from '../../src/errors.js'
import { SOON_MS } from '../fixtures/within.js'

const BROKEN = `data: ${JSON.stringify(errorBody('upstream_stream_error'))}\n\n`

/** Pumps `source` through `handler` into a real response; what the client read, and how it ended. */
async function pump (t: Test, source: AsyncIterable<Uint8Array>, handler: EventHandler, onAbort = (): void => {}): Promise<{ text: string, end: PumpEnd, errors: unknown[] }> {
  const errors: unknown[] = []
  let end: Promise<PumpEnd> | undefined
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const controller = new AbortController()
    end = pumpEvents(res, source, createEventStream(handler), {
      signal: controller.signal,
      abort: () => {
        controller.abort()
        onAbort()
      },
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

/** Ends at `[DONE]`, as the chat transform does. */
function endsAtDone (): EventHandler {
  let done = false
  return {
    inspect: ({ buf, start, end }) => buf.subarray(start, end).includes('[DONE]') ? 'decode' : 'forward',
    onEvent: (event) => {
      if (event.data === '[DONE]') done = true
      return undefined
    },
    flush: () => {},
    get done () { return done },
    complete: true
  }
}

/**
 * An upstream body that sends `[DONE]`, then `after` (pieces, then, when `hang`, a read
 * that waits until `abort` is called, as undici's body does for an aborted request); it
 * records each read and when the request was let go (aborted, or its body returned).
 */
function afterDone (after: string[], hang: boolean | Error): { source: AsyncIterable<Uint8Array>, reads: () => number, released: Promise<number>, abort: () => void } {
  let reads = 0
  let aborted: (err: Error) => void = () => {}
  let release: (at: number) => void = () => {}
  const released = new Promise<number>((resolve) => { release = resolve })
  const pieces = ['data: a\n\ndata: [DONE]\n\n', ...after]
  const source: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator] () {
      return {
        async next () {
          reads++
          const piece = pieces.shift()
          if (piece !== undefined) return { done: false, value: new TextEncoder().encode(piece) }
          if (hang instanceof Error) throw hang
          if (hang) return await new Promise<never>((_resolve, reject) => { aborted = reject })
          return { done: true, value: undefined }
        },
        async return () {
          release(performance.now())
          return { done: true, value: undefined }
        }
      }
    }
  }
  const abort = (): void => {
    release(performance.now())
    aborted(new Error('aborted'))
  }
  return { source, reads: () => reads, released, abort }
}

t.test('after [DONE] the rest of the body is read, so the upstream connection can serve another request', async (t) => {
  const body = afterDone(['\n', ': bye\n\n'], false)
  const { text, end } = await pump(t, body.source, endsAtDone())
  t.equal(text, 'data: a\n\ndata: [DONE]\n\n', 'the client gets the answer up to [DONE] and nothing after')
  t.equal(end, 'done', 'ended at [DONE]')
  await body.released
  t.equal(body.reads(), 4, 'the body was read to its end (three pieces, then the end) before it was let go')
})

t.test('what an upstream sends after [DONE] is read at most up to a bound, then its request is let go', async (t) => {
  const piece = 'x'.repeat(1024)
  const body = afterDone(Array.from({ length: 200 }, () => piece), true)
  const { end } = await pump(t, body.source, endsAtDone(), body.abort)
  t.equal(end, 'done', 'the answer ended at [DONE]')
  await body.released
  const dropped = (body.reads() - 1) * piece.length
  t.ok(dropped > DRAIN_MAX_BYTES && dropped <= DRAIN_MAX_BYTES + piece.length, `${dropped} bytes read after [DONE], just past ${DRAIN_MAX_BYTES}`)
})

t.test('an upstream that fails after [DONE] is let go, and the answer stays whole', async (t) => {
  const body = afterDone([': bye\n\n'], new Error('socket hang up'))
  const { text, end, errors } = await pump(t, body.source, endsAtDone())
  t.equal(text, 'data: a\n\ndata: [DONE]\n\n', 'the answer, with no error event')
  t.equal(end, 'done', 'ended at [DONE]')
  await body.released
  t.same(errors, [], 'nothing reported: the answer was already whole')
})

t.test('an upstream that sends nothing more after [DONE] is let go after a bounded wait', async (t) => {
  const body = afterDone([], true)
  const started = performance.now()
  const { end } = await pump(t, body.source, endsAtDone(), body.abort)
  const answered = performance.now()
  t.equal(end, 'done', 'ended at [DONE]')
  const at = await body.released
  t.ok(answered < at, 'the client\'s answer ended before the upstream request was let go')
  t.ok(at - started >= DRAIN_MAX_MS - 50, `let go after the wait (${Math.round(at - started)} ms)`)
  // Bounded: without the timer the request would be held until the upstream's own timeout.
  t.ok(at - started < DRAIN_MAX_MS + SOON_MS, `and not much later (${Math.round(at - started)} ms)`)
})

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
