import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { upstreamEventTooLarge, upstreamStreamError } from '../errors.js'
import type { HttpError } from '../errors.js'
import type { EventStream } from '../sse/event-stream.js'
import { serializeComment, serializeData } from '../sse/serialize.js'

type Piece = Buffer | string

export interface PumpOptions {
  /** Aborted when the client goes away or the pump is stopped; the upstream request shares it. */
  signal: AbortSignal
  /** Aborts the upstream request (and so `signal`). */
  abort: () => void
  /** Milliseconds of upstream silence before a keep-alive comment; 0 = never. */
  keepaliveMs: number
  /** True once the upstream's answer is whole (finish seen) even without `[DONE]`. */
  complete: () => boolean
  onUpstreamError: (err: unknown) => void
}

/** How a pump ended, for logs and metrics. */
export type PumpEnd = 'done' | 'eof' | 'aborted' | 'upstream-error' | 'too-large' | 'stopped'

const KEEPALIVE = serializeComment('keepalive')

/**
 * After `[DONE]`, how much more of the upstream body is read (and dropped), and for how
 * long. An upstream ends its body right after `[DONE]`; reading to that end lets the
 * connection go back to the pool for the next request. Stopping at `[DONE]` instead
 * closed it, so every answer opened a new connection to the agent.
 */
export const DRAIN_MAX_BYTES = 64 * 1024
export const DRAIN_MAX_MS = 1000

/**
 * Reads what is left of an answered body, within the bounds above, then lets it go:
 * past them the upstream request is aborted (a pending read cannot be returned from).
 */
async function drainRest (iterator: AsyncIterator<Uint8Array>, abort: () => void): Promise<void> {
  const late = setTimeout(abort, DRAIN_MAX_MS)
  late.unref()
  try {
    for (let bytes = 0; bytes <= DRAIN_MAX_BYTES;) {
      const next = await iterator.next()
      if (next.done === true) return
      bytes += next.value.length
    }
    abort()
  } catch {
    // The upstream went away, or the wait ran out: there is no connection to keep.
  } finally {
    clearTimeout(late)
    iterator.return?.()
  }
}

/** An SSE `data:` event carrying an OpenAI-shaped error body. */
function errorEvent (error: HttpError): string {
  return serializeData(JSON.stringify(error.toBody()))
}

/**
 * Moves one upstream event stream to the client: what one upstream read completes goes
 * out in one `write`, as nginx and the simplest proxies do (a write per event was the
 * largest cost per event in the benchmark's profile), and nothing waits for a later read
 * but an event the read cut. Backpressure from a slow client pauses the upstream read.
 * `stop()` ends the stream early with an error event (shutdown).
 */
export function pumpEvents (res: ServerResponse, source: AsyncIterable<Uint8Array>, events: EventStream, options: PumpOptions): { done: Promise<PumpEnd>, stop: (error: HttpError) => void } {
  let stopped: HttpError | undefined

  /**
   * Writes `texts` (the rare case of several pieces: held text and an error event, or
   * a keep-alive comment); a response already destroyed takes nothing. The socket is corked,
   * not the response: from Node 22 a corked response keeps its chunks itself and answers
   * false past its high-water mark even when uncork() then hands them all to a socket
   * with room, and it emits no 'drain' afterwards, so the stream stopped for good. (A
   * response queued behind a pipelined one has no socket yet; Node buffers its writes
   * until it gets one.)
   */
  function write (texts: readonly Piece[]): void {
    texts = texts.filter((text) => text.length > 0)
    if (texts.length === 0 || res.destroyed) return
    const { socket } = res
    socket?.cork()
    for (const text of texts) res.write(text)
    socket?.uncork()
  }

  // Agent runs go quiet for minutes while tools work; idle proxies and Open WebUI's
  // reader would cut the connection without some bytes now and then.
  const keepalive = options.keepaliveMs > 0
    ? setInterval(() => { write([KEEPALIVE]) }, options.keepaliveMs)
    : undefined
  keepalive?.unref()

  /**
   * The held text, for a stream that is ending on an error. The handler already failed
   * once on this input and may fail again; the error event must still go out, and a throw
   * here would reject `done`, which nobody awaits: an unhandled rejection ends the process.
   */
  function heldOnError (): Piece[] {
    try {
      return [events.end()]
    } catch (err) {
      options.onUpstreamError(err)
      return []
    }
  }

  async function run (): Promise<PumpEnd> {
    const iterator = source[Symbol.asyncIterator]()
    let draining = false
    try {
      for (;;) {
        const next = await iterator.next()
        if (next.done === true) break
        keepalive?.refresh()
        const bytes = events.feed(next.value)
        const writable = bytes.length === 0 || res.destroyed || res.write(bytes)
        if (events.done) {
          draining = true
          drainRest(iterator, options.abort)
          return 'done'
        }
        if (events.overflowed) {
          write([events.end(), errorEvent(upstreamEventTooLarge())])
          return 'too-large'
        }
        if (!writable) await once(res, 'drain', { signal: options.signal })
      }
      // EOF without [DONE] and without a finish is a cut answer, never a clean one.
      const rest: Piece[] = [events.end()]
      if (!events.done && !options.complete()) rest.push(errorEvent(upstreamStreamError()))
      write(rest)
      return 'eof'
    } catch (err) {
      if (stopped !== undefined) {
        write([...heldOnError(), errorEvent(stopped)])
        return 'stopped'
      }
      if (options.signal.aborted) return 'aborted'
      options.onUpstreamError(err)
      write([...heldOnError(), errorEvent(upstreamStreamError(err))])
      return 'upstream-error'
      // Try and catch both return: V8 still counts the gap before `finally` as a branch.
      /* c8 ignore next */
    } finally {
      if (keepalive !== undefined) clearInterval(keepalive)
      // Stops the upstream body (and its request) unless it already ended.
      if (!draining) iterator.return?.()
    }
  }

  return {
    done: run().then((end) => {
      if (!res.destroyed) res.end()
      return end
    }),
    stop (error) {
      stopped = error
      options.abort()
    }
  }
}
