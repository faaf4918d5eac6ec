import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { CR, NEWLINE as LF } from '../chars.js'

/**
 * The most an unterminated event may buffer, in bytes. One SSE line of an upstream can
 * legitimately be several megabytes (inline base64 images); past this cap the stream is
 * ended with an error event rather than letting one response take the heap.
 */
export const DEFAULT_MAX_EVENT_SIZE = 32 * 1024 * 1024

const BOM = '\ufeff'
const EMPTY = Buffer.alloc(0)

/** One event as the upstream sent it: its bytes are `buf[start, end)`. */
export interface RawEvent {
  buf: Buffer
  start: number
  end: number
  /** Its lines that are not empty: 1 for the common `data: …` event. */
  lines: number
}

/**
 * What a handler does with an event it looked at on its raw bytes: send it as it came,
 * send what it put in the output instead, or have it decoded and parsed (`onEvent`).
 */
export type Verdict = 'forward' | 'replaced' | 'decode'

/** What a protocol (chat completions, responses) does with the upstream's events. */
export interface EventHandler {
  /**
   * A cheap look at an event's raw bytes, before anything decodes it: `forward` when the
   * event cannot change and releases nothing, so it goes out as it came, unparsed;
   * `replaced` when the handler changed it on its bytes and appended what goes out in its
   * place (and before it) to `out`; `decode` when it needs `onEvent`.
   */
  inspect: (event: RawEvent, out: Array<Buffer | string>) => Verdict
  /**
   * An event `inspect` sent on to be decoded, parsed by eventsource-parser; `raw` is its whole
   * text (comments and all). Appends the text of events to send before it to `before`,
   * and returns the event's new text, or undefined to send its bytes as they came.
   */
  onEvent: (event: EventSourceMessage, raw: string, before: string[]) => string | undefined
  /** The upstream ended: append whatever text is still held. */
  flush: (out: string[]) => void
  /** True once the terminal event (`[DONE]`) was seen: nothing after it is sent. */
  readonly done: boolean
  /** True when the upstream's answer is whole (or ended by its error) without a terminal event. */
  readonly complete: boolean
}

export interface EventStream {
  /**
   * Feed the bytes of one upstream read; returns the bytes to write now, in one buffer:
   * every complete event of the read (and of the event that waited for it), changed or
   * as it came. Only a trailing incomplete event waits for the next read.
   */
  feed: (chunk: Uint8Array) => Buffer
  /** The upstream body ended: the held text, then (when the answer is whole) an unterminated last event. */
  end: () => Buffer
  readonly done: boolean
  /** True once an event exceeded `maxEventSize`; the caller must stop reading. */
  readonly overflowed: boolean
}

export interface EventStreamOptions {
  maxEventSize?: number
}

/**
 * Frames an upstream event stream on its raw bytes and forwards each event's bytes as
 * they came unless the handler changes it. Lines end in LF, CRLF or a lone CR (WHATWG
 * HTML 9.2.6); an empty line ends an event. Bytes are split only at event ends, so a
 * multi-byte character is never cut, and an event that is only forwarded is never
 * decoded: nginx and the simplest Node proxies, which forward what they read in one
 * write, cost a quarter of a proxy that parses and re-serializes every event.
 *
 * Events the handler may change are decoded and given to eventsource-parser, which stays
 * the authority on SSE semantics (fields, multi-line data, a leading BOM).
 */
export function createEventStream (handler: EventHandler, options: EventStreamOptions = {}): EventStream {
  const maxEventSize = options.maxEventSize ?? DEFAULT_MAX_EVENT_SIZE
  /** An incomplete event: the reads it came in, and their total length. */
  let pending: Buffer[] = []
  let pendingSize = 0
  /** Line state carried across reads: the current line is empty; the last byte was a CR. */
  let lineEmpty = true
  let afterCr = false
  let overflowed = false
  /** No event was decoded yet: the first may start with the stream's BOM. */
  let first = true
  /** Lines that are not empty in the event being framed. */
  let lines = 0
  // Reused by every read: the ends of its events, and each one's count of lines.
  const ends: number[] = []
  const lineCounts: number[] = []

  let parsed: EventSourceMessage | undefined
  const parser = createParser({ onEvent (event) { parsed = event } })

  /**
   * Fills `ends` with the ends (exclusive) of the events that complete in `buf[from…]`
   * and `lineCounts` with their lines, updating the line state.
   */
  function frame (buf: Buffer, from: number): void {
    ends.length = 0
    lineCounts.length = 0
    let i = from
    let nextLf = buf.indexOf(LF, i)
    let nextCr = buf.indexOf(CR, i)
    for (;;) {
      // The LF of a CRLF (perhaps in the next read): part of the line end already counted.
      if (afterCr && i < buf.length) {
        afterCr = false
        if (buf[i] === LF) {
          i++
          nextLf = buf.indexOf(LF, i)
          if (lineEmpty && ends.length > 0 && ends[ends.length - 1] === i - 1) ends[ends.length - 1] = i
        }
      }
      const at = nextLf === -1 ? nextCr : nextCr === -1 ? nextLf : Math.min(nextLf, nextCr)
      if (at === -1) {
        if (i < buf.length) lineEmpty = false
        return
      }
      if (at > i) lineEmpty = false
      if (lineEmpty) {
        ends.push(at + 1)
        lineCounts.push(lines)
        lines = 0
      } else {
        lines++
      }
      lineEmpty = true
      if (buf[at] === CR) {
        afterCr = true
        nextCr = buf.indexOf(CR, at + 1)
      } else {
        // An event's data line is followed by the blank line that ends it: one look, no search.
        nextLf = buf[at + 1] === LF ? at + 1 : buf.indexOf(LF, at + 1)
      }
      i = at + 1
    }
  }

  /** The event's text for the parser (without the stream's BOM), and its result. */
  function parse (raw: string): EventSourceMessage | undefined {
    parsed = undefined
    parser.feed(first && raw.startsWith(BOM) ? raw.slice(1) : raw)
    // A lone CR may still be the first half of a CRLF for the parser: settle it.
    if (raw.charCodeAt(raw.length - 1) === CR) parser.feed('\n')
    return parsed
  }

  // One of each for every event: an event that is only forwarded allocates nothing.
  const raw: RawEvent = { buf: EMPTY, start: 0, end: 0, lines: 0 }
  const before: string[] = []

  /** What goes out for an event that changed (inserted events first); reused. */
  const changes: Array<Buffer | string> = []

  /**
   * Looks at the event `buf[start, end)`: false when it goes out as it came and nothing
   * goes before it; else puts what goes out for it in `changes` and returns true.
   */
  function take (buf: Buffer, start: number, end: number, eventLines: number): boolean {
    raw.buf = buf
    raw.start = start
    raw.end = end
    raw.lines = eventLines
    const verdict = handler.inspect(raw, changes)
    if (verdict !== 'decode') {
      first = false
      return verdict === 'replaced'
    }
    const text = buf.toString('utf8', start, end)
    const event = parse(text)
    first = false
    const changed = event === undefined ? undefined : handler.onEvent(event, text, before)
    if (changed === undefined && before.length === 0) return false
    for (const inserted of before) changes.push(inserted)
    before.length = 0
    changes.push(changed ?? buf.subarray(start, end))
    return true
  }

  function moveChanges (out: Array<Buffer | string>): void {
    for (const piece of changes) out.push(piece)
    changes.length = 0
  }

  function join (out: Array<Buffer | string>): Buffer {
    if (out.length === 0) return EMPTY
    if (out.length === 1 && out[0] instanceof Buffer) return out[0]
    return Buffer.concat(out.map((piece) => typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece))
  }

  return {
    feed (chunk) {
      if (overflowed || handler.done || chunk.length === 0) return EMPTY
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
      frame(buf, 0)
      const out: Array<Buffer | string> = []
      let from = 0
      // The start of the events forwarded as they came since the last change: one slice.
      let run = 0
      for (let e = 0; e < ends.length; e++) {
        const end = ends[e] as number
        const eventLines = lineCounts[e] as number
        if (handler.done) break
        if (pendingSize > 0) {
          // The event that waited: its bytes joined once, now that it is whole.
          pending.push(buf.subarray(0, end))
          const whole = Buffer.concat(pending, pendingSize + end)
          pending = []
          pendingSize = 0
          if (take(whole, 0, whole.length, eventLines)) moveChanges(out)
          else out.push(whole)
          run = end
        } else if (take(buf, from, end, eventLines)) {
          if (from > run) out.push(buf.subarray(run, from))
          moveChanges(out)
          run = end
        }
        from = end
      }
      if (from > run) out.push(buf.subarray(run, from))
      if (from < buf.length && !handler.done) {
        pendingSize += buf.length - from
        pending.push(from === 0 ? buf : buf.subarray(from))
        if (pendingSize > maxEventSize) {
          overflowed = true
          pending = []
          pendingSize = 0
        }
      }
      return join(out)
    },
    end () {
      if (handler.done) return EMPTY
      const out: string[] = []
      handler.flush(out)
      const pieces: Array<Buffer | string> = out
      // WHATWG SSE drops an event the stream ended inside. When the answer is whole its
      // bytes still go out as they came (a last `data: [DONE]` with one line end); after
      // a cut answer they would swallow the error event that follows.
      if (pendingSize > 0 && !overflowed && handler.complete) pieces.push(...pending)
      pending = []
      pendingSize = 0
      return join(pieces)
    },
    get done () {
      return handler.done
    },
    get overflowed () {
      return overflowed
    }
  }
}
