import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { serializeComment } from './serialize.js'

/**
 * The most an unterminated line or event may buffer, in characters. One SSE line of an
 * upstream can legitimately be several megabytes (inline base64 images); past this cap the
 * stream is ended with an error event rather than letting one response take the heap.
 */
export const DEFAULT_MAX_EVENT_SIZE = 32 * 1024 * 1024

const CR = 0x0d

/** What a protocol (chat completions, responses) does with each parsed event. */
export interface EventHandler {
  /** Append the SSE text to send for `event` (zero, one or several events) to `out`. */
  onEvent: (event: EventSourceMessage, out: string[]) => void
  /** The upstream ended: append whatever text is still held. */
  flush: (out: string[]) => void
  /** True once the terminal event (`[DONE]`) was seen: nothing after it is sent. */
  readonly done: boolean
  /** True when the upstream's answer is whole even without a terminal event. */
  readonly complete: boolean
}

export interface EventStream {
  /** Feed raw upstream bytes; returns the SSE texts to write, one event per element. */
  feed: (chunk: Uint8Array) => string[]
  /** The upstream body ended: returns the final texts (held text first). */
  end: () => string[]
  readonly done: boolean
  /** True once an event exceeded `maxEventSize`; the caller must stop reading. */
  readonly overflowed: boolean
}

export interface EventStreamOptions {
  maxEventSize?: number
}

/**
 * Byte-level adapter around eventsource-parser: decodes UTF-8 across chunk boundaries
 * (TextDecoder in streaming mode also drops a leading BOM, as WHATWG SSE requires),
 * re-emits comments and `retry:` lines, and forwards lines the parser rejects as they
 * were, so nothing the upstream sent is silently lost.
 */
export function createEventStream (handler: EventHandler, options: EventStreamOptions = {}): EventStream {
  const decoder = new TextDecoder()
  let out: string[] = []
  let overflowed = false
  // WHATWG SSE lets a lone CR end a line. The parser waits for the next character to tell
  // CR from CRLF, so a CR-only stream's last line would wait forever at the end.
  let endsWithCr = false
  const parser = createParser({
    maxBufferSize: options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE,
    onEvent (event) {
      if (!handler.done) handler.onEvent(event, out)
    },
    onComment (comment) {
      if (!handler.done) out.push(serializeComment(comment))
    },
    onRetry (retry) {
      if (!handler.done) out.push(`retry: ${retry}\n\n`)
    },
    onError (error) {
      if (error.type === 'max-buffer-size-exceeded') overflowed = true
      // A line the parser does not know (`foo: bar`, `retry: soon`) is ignored by every
      // SSE reader; it goes out as its own block so the bytes still reach the client.
      else if (error.line !== undefined && !handler.done) out.push(`${error.line}\n\n`)
    }
  })

  function take (): string[] {
    const result = out
    out = []
    return result
  }

  function feedText (text: string): void {
    if (text.length === 0) return
    endsWithCr = text.charCodeAt(text.length - 1) === CR
    parser.feed(text)
  }

  return {
    feed (chunk) {
      if (overflowed || handler.done) return []
      feedText(decoder.decode(chunk, { stream: true }))
      return take()
    },
    end () {
      if (!overflowed && !handler.done) {
        feedText(decoder.decode())
        // Completes a final CR as a CRLF would: one line end, never an extra blank line.
        if (endsWithCr && !overflowed) parser.feed('\n')
      }
      if (!handler.done) handler.flush(out)
      return take()
    },
    get done () {
      return handler.done
    },
    get overflowed () {
      return overflowed
    }
  }
}
